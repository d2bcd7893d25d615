package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/northwind-it/ticketgw/classify"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
)

// classifyJSON is one line of `gateway classify --json` (SPEC §4).
type classifyJSON struct {
	File           string             `json:"file"`
	Contract       *string            `json:"contract"`
	Category       domain.Category    `json:"category"`
	Priority       domain.Priority    `json:"priority"`
	Rules          []string           `json:"rules"`
	Tags           []string           `json:"tags"`
	Received       string             `json:"received"`
	EffectiveStart *string            `json:"effective_start"`
	ResponseDue    *string            `json:"response_due"`
	ResolutionDue  *string            `json:"resolution_due"`
	IMACDate       *string            `json:"imac_date"`
	IMACQuotaUsed  *int               `json:"imac_quota_used"`
	IMACQuota      *int               `json:"imac_quota"`
	IMACBillable   *bool              `json:"imac_billable"`
	Ack            bool               `json:"ack"`
	AckReason      *string            `json:"ack_reason"`
	AutoEvidence   string             `json:"auto_evidence,omitempty"`
	Trace          []domain.TraceStep `json:"trace"`
	Warnings       []string           `json:"warnings,omitempty"`
	AckSubject     string             `json:"ack_subject,omitempty"`
	AckText        string             `json:"ack_text,omitempty"`
}

func cmdClassify(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("classify", env.Stderr, "-c FILE [--at TIME] [--json] [--show-ack] [--redis] MESSAGE...")
	cfgPath := fs.String("c", "gateway.yaml", "configuration `file`")
	at := fs.String("at", "", "classify as if received at `TIME` (RFC 3339, or YYYY-MM-DDTHH:MM in the contract's zone); default now")
	asJSON := fs.Bool("json", false, "print one JSON object per message")
	showAck := fs.Bool("show-ack", false, "print the acknowledgement the customer would receive")
	useRedis := fs.Bool("redis", false, "read (never write) the live IMAC counters from Redis")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return errUsage
	}
	if len(files) == 0 {
		fs.Usage()
		return errUsage
	}
	if *at != "" {
		if _, err := parseAt(*at, time.UTC); err != nil {
			return fmt.Errorf("--at: %w", err)
		}
	}
	cfg, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	tmpl, err := loadTemplates(cfg, env)
	if err != nil {
		return err
	}
	cl := classify.New(cfg)
	var usageFor func(contract string) (sla.Usage, error)
	if *useRedis {
		st, closeFn, err := openStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeFn()
		usageFor = func(contract string) (sla.Usage, error) { return st.IMACUsage(ctx, contract) }
	}

	failed := false
	for _, f := range files {
		if err := classifyOne(ctx, cfg, cl, tmpl, f, *at, *asJSON, *showAck, usageFor, env); err != nil {
			fmt.Fprintf(env.Stderr, "%s: %v\n", f, err)
			failed = true
		}
	}
	if failed {
		return errSilentFailure
	}
	return nil
}

func classifyOne(ctx context.Context, cfg *rules.Config, cl *classify.Classifier, tmpl *notify.Templates,
	file, at string, asJSON, showAck bool, usageFor func(string) (sla.Usage, error), env Env) error {
	fh, err := os.Open(file)
	if err != nil {
		// The caller prints "file: err"; do not name the file twice.
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil && st.IsDir() {
		return errors.New("is a directory, not a message file")
	}
	lim := ingest.DefaultLimits()
	if cfg.Limits.MaxMessageBytes > 0 {
		lim.MaxMessageBytes = cfg.Limits.MaxMessageBytes
	}
	m := ingest.Parse(fh, lim)

	// The zone of --at depends on the contract, which the sender decides.
	loc := time.UTC
	if ct, _ := cl.Contract(m.From.Addr); ct != nil && ct.Calendar != nil {
		loc = ct.Calendar.Loc
	}
	received := env.Now()
	if at != "" {
		received, _ = parseAt(at, loc)
	}
	m.Received = received
	var usage sla.Usage = sla.NoUsage{}
	if usageFor != nil {
		if ct, _ := cl.Contract(m.From.Addr); ct != nil {
			if usage, err = usageFor(ct.ID); err != nil {
				return fmt.Errorf("read imac counters: %w", err)
			}
		}
	}
	dec, err := service.Decide(cfg, cl, m, received, usage)
	if err != nil {
		return err
	}
	var ack *notify.Rendered
	if showAck || asJSON {
		if r, ok, err := service.RenderAck(tmpl, cfg, dec, service.PlaceholderTicket(cfg, dec)); err != nil {
			return fmt.Errorf("render acknowledgement: %w", err)
		} else if ok {
			ack = &r
		}
	}
	if asJSON {
		out := toJSON(file, dec)
		if showAck && ack != nil {
			out.AckSubject, out.AckText = ack.Subject, ack.Text
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", b)
		return nil
	}
	printHuman(env.Stdout, file, dec)
	if showAck {
		if ack == nil {
			fmt.Fprintf(env.Stdout, "  acknowledgement: none (%s)\n\n", dec.Class.AckReason)
		} else {
			fmt.Fprintf(env.Stdout, "  acknowledgement:\n    Subject: %s\n", ack.Subject)
			for _, line := range strings.Split(strings.TrimRight(ack.Text, "\n"), "\n") {
				fmt.Fprintf(env.Stdout, "    | %s\n", line)
			}
			fmt.Fprintln(env.Stdout)
		}
	}
	return nil
}

// parseAt reads --at: RFC 3339, or a local date-time in loc.
func parseAt(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want RFC 3339 (2026-11-30T09:30:00+02:00) or YYYY-MM-DDTHH:MM in the contract's zone", s)
}

func rfc3339(t time.Time, loc *time.Location) *string {
	if t.IsZero() {
		return nil
	}
	s := t.In(loc).Format(time.RFC3339)
	return &s
}

func toJSON(file string, d service.Decision) classifyJSON {
	out := classifyJSON{
		File:     file,
		Category: d.Class.Category,
		Priority: d.Class.Priority,
		Rules:    d.Class.Rules,
		Tags:     d.Class.Tags,
		Received: d.Received.Format(time.RFC3339),
		Ack:      d.Class.Ack,
		Trace:    d.Class.Trace,
		Warnings: d.Msg.Warnings,
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if d.Class.Contract != "" {
		c := d.Class.Contract
		out.Contract = &c
	}
	if d.Contract != nil {
		out.EffectiveStart = rfc3339(d.Deadlines.EffectiveStart, d.Loc)
		out.ResponseDue = rfc3339(d.Deadlines.ResponseDue, d.Loc)
		out.ResolutionDue = rfc3339(d.Deadlines.ResolutionDue, d.Loc)
	}
	if d.IMAC != nil {
		date := d.IMAC.Date.String()
		used, quota, billable := d.IMAC.QuotaUsed, d.IMAC.Quota, d.IMAC.Billable
		out.IMACDate, out.IMACQuotaUsed, out.IMACQuota, out.IMACBillable = &date, &used, &quota, &billable
	}
	if !d.Class.Ack {
		r := d.Class.AckReason
		out.AckReason = &r
		out.AutoEvidence = d.Msg.AutoWhy
	}
	return out
}

func printHuman(w io.Writer, file string, d service.Decision) {
	m := d.Msg
	fmt.Fprintf(w, "%s\n", file)
	from := m.From.Addr
	if m.From.Name != "" {
		from = fmt.Sprintf("%s <%s>", m.From.Name, m.From.Addr)
	}
	fmt.Fprintf(w, "  from:        %s\n", from)
	fmt.Fprintf(w, "  subject:     %s\n", m.Subject)
	if d.Contract != nil {
		fmt.Fprintf(w, "  contract:    %s (%s, matched by %s)\n", d.Contract.ID, d.Contract.Name, d.Class.MatchedBy)
	} else {
		fmt.Fprintf(w, "  contract:    none (unknown sender)\n")
	}
	fmt.Fprintf(w, "  category:    %s, priority %s\n", d.Class.Category, d.Class.Priority)
	if len(d.Class.Tags) > 0 {
		fmt.Fprintf(w, "  tags:        %s\n", strings.Join(d.Class.Tags, ", "))
	}
	fmt.Fprintf(w, "  rules:\n")
	width := 20 // the rule names' column, as wide as the longest name
	for _, s := range d.Class.Trace {
		width = max(width, utf8.RuneCountInString(s.Rule))
	}
	for _, s := range d.Class.Trace {
		mark := "-"
		if s.Matched {
			mark = "+"
		}
		extra := ""
		if len(s.Set) > 0 {
			var kv []string
			for _, k := range []string{"category", "priority", "tags", "ack", "drop"} {
				if v, ok := s.Set[k]; ok {
					kv = append(kv, k+"="+v)
				}
			}
			extra = " [set " + strings.Join(kv, " ") + "]"
		}
		if s.Stopped {
			extra += " [stop]"
		}
		fmt.Fprintf(w, "    %s %-*s %s%s\n", mark, width, s.Rule, s.Why, extra)
	}
	const layout = "Mon 2006-01-02 15:04 MST"
	fmt.Fprintf(w, "  received:    %s\n", d.Received.Format(layout))
	if d.Contract != nil {
		if !d.Deadlines.EffectiveStart.Equal(d.Received) {
			fmt.Fprintf(w, "  clock starts %s (outside business hours)\n", d.Deadlines.EffectiveStart.Format(layout))
		}
		if d.HasTargets {
			if !d.Deadlines.ResponseDue.IsZero() {
				fmt.Fprintf(w, "  response:    %s\n", d.Deadlines.ResponseDue.Format(layout))
			}
			if !d.Deadlines.ResolutionDue.IsZero() {
				fmt.Fprintf(w, "  resolution:  %s\n", d.Deadlines.ResolutionDue.Format(layout))
			}
		} else if d.IMAC == nil {
			fmt.Fprintf(w, "  no targets:  looked at from %s\n", d.NextOpening.Format(layout))
		}
		if d.IMAC != nil {
			s := d.IMAC
			quota := "unlimited"
			if s.Quota > 0 {
				quota = fmt.Sprint(s.Quota)
			}
			note := ""
			if s.Billable {
				note = ", billable (over quota)"
			}
			if s.Deferred {
				note = ", moved to a later month (quota full)"
			}
			fmt.Fprintf(w, "  imac:        %s %s (notice ends %s), IMAC %d of %s that month%s\n",
				s.Date.Weekday(), s.Date, s.NoticeEnd.Format(layout), s.QuotaUsed, quota, note)
		}
	}
	if d.Class.Ack {
		fmt.Fprintf(w, "  ack:         yes\n")
	} else {
		ev := ""
		if m.AutoWhy != "" {
			ev = " — " + m.AutoWhy
		}
		fmt.Fprintf(w, "  ack:         no (%s%s)\n", d.Class.AckReason, ev)
	}
	for _, wn := range m.Warnings {
		fmt.Fprintf(w, "  warning:     %s\n", wn)
	}
	fmt.Fprintln(w)
}

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/store"
)

// cmdTickets reads the state: `tickets list` shows tickets with their
// deadlines, `tickets show ID` one ticket with its events and timers. It
// never writes.
func cmdTickets(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		fmt.Fprintln(env.Stderr, "usage: gateway tickets list -c FILE [--contract ID] [--all] [--json]\n       gateway tickets show -c FILE [--json] ID")
		return errUsage
	}
	sub := args[0]
	fs := newFlagSet("tickets "+sub, env.Stderr, "-c FILE ...")
	cfgPath := fs.String("c", "gateway.yaml", "configuration `file`")
	contract := fs.String("contract", "", "only this contract (list)")
	all := fs.Bool("all", false, "include resolved and closed tickets (list)")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	st, closeFn, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	if sub == "show" {
		if len(rest) != 1 {
			fmt.Fprintln(env.Stderr, "usage: gateway tickets show -c FILE [--json] ID")
			return errUsage
		}
		return showTicket(ctx, cfg, st, rest[0], *asJSON, env.Stdout)
	}
	return listTickets(ctx, cfg, st, *contract, *all, *asJSON, env)
}

func contractIDs(cfg *rules.Config, only string) []string {
	if only != "" {
		return []string{only}
	}
	ids := []string{""} // tickets of unknown senders
	for _, c := range cfg.Contracts {
		ids = append(ids, c.ID)
	}
	return ids
}

func zoneOf(cfg *rules.Config, contract string) *time.Location {
	if ct := cfg.ContractByID(contract); ct != nil && ct.Calendar != nil {
		return ct.Calendar.Loc
	}
	return time.UTC
}

func listTickets(ctx context.Context, cfg *rules.Config, st *store.Store, only string, all, asJSON bool, env Env) error {
	if only != "" && cfg.ContractByID(only) == nil {
		return fmt.Errorf("no contract %q in the configuration", only)
	}
	var tickets []domain.Ticket
	for _, id := range contractIDs(cfg, only) {
		ts, err := st.TicketsByContract(ctx, id)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if all || t.Status == domain.StatusOpen || t.Status == domain.StatusPending {
				tickets = append(tickets, t)
			}
		}
	}
	sort.Slice(tickets, func(i, j int) bool { return tickets[i].Opened.Before(tickets[j].Opened) })
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		for _, t := range tickets {
			if err := enc.Encode(t); err != nil {
				return err
			}
		}
		return nil
	}
	now := env.Now()
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TICKET\tSTATUS\tCATEGORY\tPRIORITY\tOPENED\tRESPONSE DUE\tRESOLUTION DUE\tREQUESTER\tSUBJECT")
	for _, t := range tickets {
		loc := zoneOf(cfg, t.Contract)
		resp := dueText(t.ResponseDue, loc, now)
		if !t.FirstResponse.IsZero() {
			resp = "answered " + t.FirstResponse.In(loc).Format("01-02 15:04")
		}
		res := dueText(t.ResolutionDue, loc, now)
		if t.IMACDate != "" {
			res = "IMAC " + t.IMACDate
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Status, t.Category, t.Priority,
			t.Opened.In(loc).Format("2006-01-02 15:04"), resp, res, t.Requester.Addr, clip(t.Subject, 50))
	}
	tw.Flush()
	pending, oldest, err := st.OutboxDepth(ctx)
	if err == nil {
		age := ""
		if pending > 0 && !oldest.IsZero() {
			age = fmt.Sprintf(", oldest due %s ago", now.Sub(oldest).Round(time.Second))
		}
		fmt.Fprintf(env.Stdout, "\n%d ticket(s); outbox: %d message(s) waiting%s\n", len(tickets), pending, age)
	}
	return nil
}

func dueText(t time.Time, loc *time.Location, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	s := t.In(loc).Format("01-02 15:04")
	if !t.After(now) {
		s += " (overdue)"
	}
	return s
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func showTicket(ctx context.Context, cfg *rules.Config, st *store.Store, id string, asJSON bool, w io.Writer) error {
	t, err := st.Ticket(ctx, id)
	if err != nil {
		return fmt.Errorf("ticket %s: %w", id, err)
	}
	events, err := st.Events(ctx, t.ID)
	if err != nil {
		return err
	}
	timers, err := st.PendingTimers(ctx, t.Contract)
	if err != nil {
		return err
	}
	var mine []store.TimerEntry
	for _, e := range timers {
		if e.Ticket == t.ID {
			mine = append(mine, e)
		}
	}
	if asJSON {
		return json.NewEncoder(w).Encode(struct {
			Ticket domain.Ticket      `json:"ticket"`
			Events []domain.Event     `json:"events"`
			Timers []store.TimerEntry `json:"timers"`
		}{t, events, mine})
	}
	loc := zoneOf(cfg, t.Contract)
	const layout = "Mon 2006-01-02 15:04 MST"
	at := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return x.In(loc).Format(layout)
	}
	fmt.Fprintf(w, "%s  %s  %s/%s  contract %s\n", t.ID, t.Status, t.Category, t.Priority, orNone(t.Contract))
	fmt.Fprintf(w, "  subject:        %s\n", t.Subject)
	fmt.Fprintf(w, "  requester:      %s\n", t.Requester.Addr)
	if len(t.Cc) > 0 {
		var cc []string
		for _, a := range t.Cc {
			cc = append(cc, a.Addr)
		}
		fmt.Fprintf(w, "  copied:         %s\n", strings.Join(cc, ", "))
	}
	fmt.Fprintf(w, "  opened:         %s (clock from %s)\n", at(t.Opened), at(t.EffectiveStart))
	fmt.Fprintf(w, "  response due:   %s; first response %s\n", at(t.ResponseDue), at(t.FirstResponse))
	fmt.Fprintf(w, "  resolution due: %s\n", at(t.ResolutionDue))
	if t.IMACDate != "" {
		fmt.Fprintf(w, "  IMAC:           %s (IMAC %d of %d that month, billable %v)\n", t.IMACDate, t.IMACQuotaUse, t.IMACQuota, t.Billable)
	}
	if t.PausedBusiness > 0 || !t.PausedAt.IsZero() {
		fmt.Fprintf(w, "  paused:         %s business time; pending since %s\n", t.PausedBusiness, at(t.PausedAt))
	}
	if t.RefersTo != "" {
		fmt.Fprintf(w, "  continues:      %s\n", t.RefersTo)
	}
	fmt.Fprintf(w, "  timers:\n")
	for _, e := range mine {
		lease := ""
		if !e.LeasedUntil.IsZero() {
			lease = " (claimed)"
		}
		fmt.Fprintf(w, "    %-18s %s%s\n", e.Kind, at(e.Due), lease)
	}
	fmt.Fprintf(w, "  events:\n")
	for _, e := range events {
		var kv []string
		for k, v := range e.Data {
			if v != "" {
				kv = append(kv, k+"="+v)
			}
		}
		sort.Strings(kv)
		fmt.Fprintf(w, "    %s  %-10s %s %s\n", at(e.At), e.Kind, e.Actor, strings.Join(kv, " "))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

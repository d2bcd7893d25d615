package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// RecalcStore is what recomputing deadlines needs of the store.
type RecalcStore interface {
	SLAFingerprint(ctx context.Context, contract string) (string, error)
	SetSLAFingerprint(ctx context.Context, contract, fp string) error
	TicketsByContract(ctx context.Context, contract string) ([]domain.Ticket, error)
	UpdateTicket(ctx context.Context, id string, ch store.Change) (domain.Ticket, bool, error)
}

// SLAFingerprint identifies what a contract's deadlines depend on: its
// calendar (zone, weekly hours, holidays), its targets and warn_at.
func SLAFingerprint(ct *rules.Contract) string {
	var b strings.Builder
	if c := ct.Calendar; c != nil {
		fmt.Fprintf(&b, "zone=%s;", c.Loc)
		for d, h := range c.Week {
			fmt.Fprintf(&b, "w%d=%s;", d, h)
		}
		var hol []string
		for d, h := range c.Holidays {
			hol = append(hol, d.String()+"="+h.String())
		}
		sort.Strings(hol)
		fmt.Fprintf(&b, "hol=%s;", strings.Join(hol, ","))
	}
	fmt.Fprintf(&b, "warn=%v;", ct.SLA.WarnAt)
	for _, c := range domain.Categories {
		for _, p := range domain.Priorities {
			if t, ok := ct.SLA.Target(c, p); ok {
				fmt.Fprintf(&b, "%s/%s=%s,%s;", c, p, spanString(t.Response), spanString(t.Resolution))
			}
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:12])
}

func spanString(s *sla.Span) string {
	if s == nil {
		return "-"
	}
	return s.String()
}

// RecalcDeadlines recomputes the deadlines and timers of the open tickets of
// every contract whose calendar or targets changed since the configuration
// the store last saw (SPEC: deadlines follow a calendar change on reload).
// Each deadline is computed again from the ticket's start, moved on by the
// business time it was paused; met responses stay met. It runs once per
// change (several instances starting together may each do it: each ticket's
// update is idempotent), and the new fingerprint is recorded only once every
// ticket is done, so a recalculation cut short is redone at the next start.
func RecalcDeadlines(ctx context.Context, cfg *rules.Config, st RecalcStore, now time.Time, log *slog.Logger) (int, error) {
	changed := 0
	for _, ct := range cfg.Contracts {
		if ct.Calendar == nil {
			continue
		}
		fp := SLAFingerprint(ct)
		old, err := st.SLAFingerprint(ctx, ct.ID)
		if err != nil {
			return changed, err
		}
		if old == fp {
			continue
		}
		if old == "" { // first start with this store: nothing was promised under another calendar
			if err := st.SetSLAFingerprint(ctx, ct.ID, fp); err != nil {
				return changed, err
			}
			continue
		}
		tickets, err := st.TicketsByContract(ctx, ct.ID)
		if err != nil {
			return changed, err
		}
		n := 0
		for _, t := range tickets {
			if t.Status != domain.StatusOpen && t.Status != domain.StatusPending {
				continue
			}
			ok, err := recalcTicket(ctx, st, ct, t, fp, now)
			if err != nil {
				return changed, err
			}
			if ok {
				n++
			}
		}
		changed += n
		if err := st.SetSLAFingerprint(ctx, ct.ID, fp); err != nil {
			return changed, err
		}
		log.Info("calendar or targets changed: deadlines recomputed", "contract", ct.ID, "tickets", n)
	}
	return changed, nil
}

func recalcTicket(ctx context.Context, st RecalcStore, ct *rules.Contract, t domain.Ticket, fp string, now time.Time) (bool, error) {
	var dl sla.Deadlines
	if tg, ok := ct.SLA.Target(t.Category, t.Priority); ok {
		dl = sla.Compute(ct.Calendar, t.Opened, tg, ct.SLA.WarnAt)
	}
	rd, sd, rw, sw := shiftBy(ct.Calendar, t.PausedBusiness, dl.ResponseDue, dl.ResolutionDue, dl.ResponseWarn, dl.ResolutionWarn)
	if !t.FirstResponse.IsZero() {
		rd, rw = t.ResponseDue, t.ResponseWarn // met: the promise stays as it was
	}
	if rd.Equal(t.ResponseDue) && sd.Equal(t.ResolutionDue) && rw.Equal(t.ResponseWarn) && sw.Equal(t.ResolutionWarn) {
		return false, nil
	}
	ch := store.Change{
		DedupKey:     "recalc:" + fp + ":" + t.ID,
		CancelTimers: []string{store.ResponseWarn, store.ResponseBreach, store.ResolutionWarn, store.ResolutionBreach},
		Event: &domain.Event{Kind: domain.EventChanged, At: now, Actor: "configuration",
			Data: map[string]string{"recalculated": "calendar or targets changed"}},
		Mutate: func(x *domain.Ticket) error {
			x.ResponseDue, x.ResolutionDue, x.ResponseWarn, x.ResolutionWarn = rd, sd, rw, sw
			return nil
		},
	}
	if t.Status == domain.StatusOpen { // a pending ticket's clock is stopped: timers come back on resume
		for _, tm := range timersFor(sla.Deadlines{ResponseDue: rd, ResolutionDue: sd, ResponseWarn: rw, ResolutionWarn: sw}) {
			if !t.FirstResponse.IsZero() && (tm.Kind == store.ResponseWarn || tm.Kind == store.ResponseBreach) {
				continue
			}
			ch.Timers = append(ch.Timers, tm)
		}
	}
	_, applied, err := st.UpdateTicket(ctx, t.ID, ch)
	if err != nil {
		return false, fmt.Errorf("recalculate %s: %w", t.ID, err)
	}
	return applied, nil
}

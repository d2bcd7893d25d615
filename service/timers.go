package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/store"
)

// TimerStore is what the timer worker needs of the state (implemented by
// *store.Store).
type TimerStore interface {
	ClaimTimers(ctx context.Context, contract string, now time.Time, lease time.Duration, limit int) ([]store.TimerEntry, error)
	AckTimer(ctx context.Context, e store.TimerEntry) error
	Ticket(ctx context.Context, id string) (domain.Ticket, error)
	Events(ctx context.Context, id string) ([]domain.Event, error)
	AppendEvent(ctx context.Context, id string, ev domain.Event, dedupKey string) (added bool, err error)
	Enqueue(ctx context.Context, e store.OutboxEntry, now time.Time) (added bool, err error)
}

var _ TimerStore = (*store.Store)(nil)

// Timer actions reported in TimerOutcome.Action.
const (
	TimerWarned   = "warn"   // a warning notice was queued (or had been, before a crash)
	TimerBreached = "breach" // a breach notice was queued and the breach recorded
	TimerVoid     = "void"   // the timer no longer applies; nothing was sent
)

// TimerOutcome says what one fired timer did, for logs, metrics and tests.
type TimerOutcome struct {
	Timer  store.TimerEntry
	Action string // TimerWarned, TimerBreached or TimerVoid
	// Reason a void timer was discarded: "ticket missing", "resolved",
	// "closed", "paused", "responded", "moved" or "superseded" (a warning
	// whose deadline had already passed when it fired).
	Reason string
	// Key is the outbox key of the notice ("" for a void timer); Queued is
	// false when an earlier delivery of the same timer had queued it.
	Key    string
	Queued bool
}

// TimerWorker fires SLA timers (SPEC §2 flow 5): when a warning or deadline
// instant of a ticket is reached it sends one notice to the staff queue and
// the escalation address, and records a breach in the ticket's history.
//
// Any number of workers, in any number of instances, may run against one
// Redis. Each claims due timers with a lease (store.ClaimTimers), so a timer
// is in one worker's hands at a time; a worker that dies before it
// acknowledges a timer leaves it to the lease, after which another worker
// claims it again. Whatever a timer causes is idempotent: the notice's
// outbox key and the breach event's dedup key are both
// "sla:<ticket>:<kind>:<due unix>", so a timer delivered twice still queues
// one mail and records one breach.
//
// A timer is void, and is acknowledged without a notice, when its ticket is
// resolved, closed or pending on the customer (the clock is paused; resuming
// re-arms the timers, see ResumeDeadlines), when it is a response timer and
// a response was recorded, when the ticket's deadline moved away from the
// timer's instant, and, for a warning, when its deadline has already passed
// (after an outage the breach notice says it all).
type TimerWorker struct {
	Cfg       *rules.Config
	Store     TimerStore
	Templates *notify.Templates
	Log       *slog.Logger
	Now       func() time.Time // default time.Now
	Lease     time.Duration    // how long a claim is held, default 1m: far longer than a batch takes
	Batch     int              // timers claimed per contract and round, default 64
	Idle      time.Duration    // wait between rounds that found nothing due, default 1s
	// Kick, when set, is called after a round that queued mail (the
	// outbox sender's Kick), so notices go out at once.
	Kick func()
	// OnOutcome, when set, is called for every timer handled.
	OnOutcome func(TimerOutcome)

	once sync.Once
}

func (w *TimerWorker) init() {
	w.once.Do(func() {
		if w.Now == nil {
			w.Now = time.Now
		}
		if w.Lease <= 0 {
			w.Lease = time.Minute
		}
		if w.Batch <= 0 {
			w.Batch = 64
		}
		if w.Idle <= 0 {
			w.Idle = time.Second
		}
		if w.Log == nil {
			w.Log = slog.New(slog.DiscardHandler)
		}
	})
}

func (w *TimerWorker) check() error {
	var missing []string
	if w.Cfg == nil {
		missing = append(missing, "Cfg")
	}
	if w.Store == nil {
		missing = append(missing, "Store")
	}
	if w.Templates == nil {
		missing = append(missing, "Templates")
	}
	if len(missing) > 0 {
		return fmt.Errorf("timer worker: %s not set", strings.Join(missing, ", "))
	}
	return nil
}

// Run fires timers until ctx is cancelled, then returns nil. Timers in hand
// when ctx ends are left to their lease. A Redis error is logged and the
// round retried after a pause; only a worker that is not set up returns an
// error.
func (w *TimerWorker) Run(ctx context.Context) error {
	w.init()
	if err := w.check(); err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		n, err := w.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := w.Idle
		switch {
		case err != nil:
			w.Log.Warn("timers: round failed", "err", err)
			wait = max(w.Idle, 2*time.Second)
		case n > 0:
			wait = 0 // more may be due
		}
		timer.Reset(wait)
	}
}

// RunOnce claims and handles one batch of due timers of every contract in
// the configuration and of tickets without a contract, and returns how many
// it claimed. Errors of single timers are logged and leave the timer to its
// lease; the error returned joins the claims that failed.
func (w *TimerWorker) RunOnce(ctx context.Context) (claimed int, err error) {
	w.init()
	if err := w.check(); err != nil {
		return 0, err
	}
	contracts := make([]string, 0, len(w.Cfg.Contracts)+1)
	for _, c := range w.Cfg.Contracts {
		contracts = append(contracts, c.ID)
	}
	contracts = append(contracts, "") // tickets of unknown senders
	var errs []error
	queued := false
	for _, c := range contracts {
		if ctx.Err() != nil {
			break
		}
		entries, err := w.Store.ClaimTimers(ctx, c, w.Now(), w.Lease, w.Batch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		claimed += len(entries)
		expired := 0
		for _, e := range entries {
			if ctx.Err() != nil {
				break // the rest stay claimed until their lease ends
			}
			if w.Now().After(e.LeasedUntil) {
				// This batch outlived its lease: another worker may hold
				// the timer now. Leave it; idempotency covers the overlap.
				expired++
				continue
			}
			out, err := w.fire(ctx, e)
			if err != nil {
				if ctx.Err() == nil {
					w.Log.Error("timers: timer failed; retried when its lease ends", "contract", c, "ticket", e.Ticket,
						"timer", e.Kind, "due", e.Due, "err", err)
				}
				continue
			}
			queued = queued || out.Queued
			if w.OnOutcome != nil {
				w.OnOutcome(out)
			}
		}
		if expired > 0 {
			w.Log.Warn("timers: batch outlived its lease; the rest is left to the next claim (raise the lease or lower the batch)",
				"contract", c, "skipped", expired, "lease", w.Lease, "batch", w.Batch)
		}
	}
	if queued && w.Kick != nil {
		w.Kick()
	}
	return claimed, errors.Join(errs...)
}

// TimerKey is the outbox key of a timer's notice and the dedup key of its
// breach event: "sla:<ticket>:<kind>:<due unix seconds>".
func TimerKey(ticket, kind string, due time.Time) string {
	return fmt.Sprintf("sla:%s:%s:%d", ticket, kind, due.Unix())
}

// fire handles one claimed timer: it checks that the timer still applies,
// queues its notice, records a breach, and acknowledges it.
func (w *TimerWorker) fire(ctx context.Context, e store.TimerEntry) (TimerOutcome, error) {
	out := TimerOutcome{Timer: e, Action: TimerVoid}
	log := w.Log.With("ticket", e.Ticket, "contract", e.Contract, "timer", e.Kind, "due", e.Due)
	now := w.Now()
	t, err := w.Store.Ticket(ctx, e.Ticket)
	switch {
	case errors.Is(err, store.ErrNotFound):
		out.Reason = "ticket missing"
	case err != nil:
		return out, fmt.Errorf("read ticket: %w", err)
	default:
		if out.Reason, err = w.voidReason(ctx, t, e, now); err != nil {
			return out, err
		}
	}
	if out.Reason != "" {
		log.Debug("timer void", "reason", out.Reason)
		return out, w.ack(ctx, e, log)
	}

	entry, err := w.notice(t, e, now)
	if err != nil {
		return out, err
	}
	out.Key = entry.Key
	if out.Queued, err = w.Store.Enqueue(ctx, entry, now); err != nil {
		return out, fmt.Errorf("queue notice: %w", err)
	}
	out.Action = TimerWarned
	if isBreach(e.Kind) {
		out.Action = TimerBreached
		if err := w.recordBreach(ctx, t, e, entry.Key, now); err != nil {
			return out, err
		}
	}
	if out.Queued {
		log.Info("sla notice queued", "action", out.Action, "to", entry.To)
	} else {
		log.Info("sla notice was already queued", "action", out.Action)
	}
	return out, w.ack(ctx, e, log)
}

func (w *TimerWorker) ack(ctx context.Context, e store.TimerEntry, log *slog.Logger) error {
	err := w.Store.AckTimer(ctx, e)
	if errors.Is(err, store.ErrNotClaimed) {
		// Rescheduled or cancelled while in hand, or acknowledged by a
		// worker whose lease ran out: either way it is no longer ours.
		log.Debug("timer no longer claimed", "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

func isBreach(kind string) bool {
	return kind == store.ResponseBreach || kind == store.ResolutionBreach
}
func isResponse(kind string) bool {
	return kind == store.ResponseWarn || kind == store.ResponseBreach
}

// deadlineOf returns the ticket instant a timer kind fires at, and the
// deadline it belongs to.
func deadlineOf(t *domain.Ticket, kind string) (at, due time.Time, dk notify.DeadlineKind, ok bool) {
	switch kind {
	case store.ResponseWarn:
		return t.ResponseWarn, t.ResponseDue, notify.ResponseDeadline, true
	case store.ResponseBreach:
		return t.ResponseDue, t.ResponseDue, notify.ResponseDeadline, true
	case store.ResolutionWarn:
		return t.ResolutionWarn, t.ResolutionDue, notify.ResolutionDeadline, true
	case store.ResolutionBreach:
		return t.ResolutionDue, t.ResolutionDue, notify.ResolutionDeadline, true
	}
	return time.Time{}, time.Time{}, "", false
}

// voidReason says why a timer no longer applies to t at now ("" when it
// does).
func (w *TimerWorker) voidReason(ctx context.Context, t domain.Ticket, e store.TimerEntry, now time.Time) (string, error) {
	at, due, _, ok := deadlineOf(&t, e.Kind)
	switch {
	case !ok:
		return "unknown kind", nil
	case at.IsZero() || at.UnixMilli() != e.Due.UnixMilli():
		return "moved", nil // the stored score is in milliseconds
	case t.Status == domain.StatusResolved:
		return "resolved", nil
	case t.Status == domain.StatusClosed:
		return "closed", nil
	case t.Status == domain.StatusPending:
		return "paused", nil
	}
	if isResponse(e.Kind) {
		if !t.FirstResponse.IsZero() {
			return "responded", nil
		}
		evs, err := w.Store.Events(ctx, t.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("read events: %w", err)
		}
		if slices.ContainsFunc(evs, func(ev domain.Event) bool { return ev.Kind == domain.EventResponse }) {
			return "responded", nil
		}
	}
	if !isBreach(e.Kind) && !now.Before(due) {
		return "superseded", nil
	}
	return "", nil
}

// staffLanguage is the language of mail to staff about a contract's tickets:
// Hebrew for a Hebrew contract, English otherwise (as the staff copy).
func staffLanguage(ct *rules.Contract) string {
	if ct != nil && ct.Language == notify.LangHebrew {
		return notify.LangHebrew
	}
	return notify.LangEnglish
}

// contract returns t's contract (nil for none, or one no longer
// configured) and the zone its dates are shown in: the contract calendar's,
// else UTC.
func (w *TimerWorker) contract(t domain.Ticket) (*rules.Contract, *time.Location) {
	ct := w.Cfg.ContractByID(t.Contract)
	if ct != nil && ct.Calendar != nil && ct.Calendar.Loc != nil {
		return ct, ct.Calendar.Loc
	}
	return ct, time.UTC
}

// notice renders and composes the notice of timer e of ticket t.
func (w *TimerWorker) notice(t domain.Ticket, e store.TimerEntry, now time.Time) (store.OutboxEntry, error) {
	ct, loc := w.contract(t)
	ti, err := notify.NewTicketInfo(&t, contractName(ct), loc)
	if err != nil {
		return store.OutboxEntry{}, err
	}
	_, due, dk, _ := deadlineOf(&t, e.Kind)
	data := notify.SLAData{
		Base: base(w.Cfg, loc), TicketInfo: ti,
		Requester: t.Requester, Status: t.Status,
		Deadline: dk, Due: due, At: now,
	}
	kind := notify.KindBreach
	if !isBreach(e.Kind) {
		kind = notify.KindWarn
		if ct != nil {
			data.WarnAt = int(math.Round(ct.SLA.WarnAt * 100))
		}
	}
	r, err := w.Templates.Render(kind, staffLanguage(ct), data)
	if err != nil {
		return store.OutboxEntry{}, fmt.Errorf("render %s notice: %w", kind, err)
	}
	id, err := notify.NewMessageID("sla", t.ID, domainOf(w.Cfg.Service.Address))
	if err != nil {
		return store.OutboxEntry{}, err
	}
	// A summary-only staff message (Auto-Submitted: auto-generated). It
	// carries no threading headers and its subject no [TAG], so a reply to
	// the notice is filed, never relayed to the customer.
	raw, env, err := notify.ComposeForward(notify.ForwardMail{
		From:       domain.Address{Name: w.Cfg.Service.Name, Addr: w.Cfg.Service.Address},
		To:         w.Cfg.Staff.Queue,
		Subject:    r.Subject,
		HeaderText: r.Text, HeaderHTML: r.HTML,
		MessageID: id, LoopMarker: w.Cfg.Service.Address, TicketID: t.ID, Date: now,
	})
	if err != nil {
		return store.OutboxEntry{}, fmt.Errorf("compose %s notice: %w", kind, err)
	}
	if esc := w.Cfg.Staff.Escalation; esc != "" && !slices.ContainsFunc(env.To, func(a string) bool { return strings.EqualFold(a, esc) }) {
		env.To = append(env.To, esc)
	}
	return store.OutboxEntry{
		Key: TimerKey(t.ID, e.Kind, e.Due), Kind: "sla-" + kind, Ticket: t.ID,
		From: env.From, To: env.To, Raw: raw,
	}, nil
}

// recordBreach appends the breached event, at most once per timer.
func (w *TimerWorker) recordBreach(ctx context.Context, t domain.Ticket, e store.TimerEntry, key string, now time.Time) error {
	_, due, dk, _ := deadlineOf(&t, e.Kind)
	ct, loc := w.contract(t)
	overdue := now.Sub(due) // no calendar: real time
	if ct != nil && ct.Calendar != nil {
		overdue = ct.Calendar.BusinessBetween(due, now)
	}
	ev := domain.Event{
		Kind: domain.EventBreached, At: due, Actor: "sla",
		Data: map[string]string{
			"deadline":         string(dk),
			"due":              due.In(loc).Format(time.RFC3339),
			"overdue_business": max(overdue, 0).Truncate(time.Second).String(),
			"notified":         now.In(loc).Format(time.RFC3339),
		},
	}
	if _, err := w.Store.AppendEvent(ctx, t.ID, ev, key); err != nil {
		return fmt.Errorf("record breach: %w", err)
	}
	return nil
}

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/conversation"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// Thread signals: what joined a message to its ticket.
const (
	SignalTag        = "tag"
	SignalInReplyTo  = "in-reply-to"
	SignalReferences = "references"
)

// ConversationStore is what threading, follow-ups and staff replies need of
// the store (implemented by *store.Store).
type ConversationStore interface {
	Ticket(ctx context.Context, id string) (domain.Ticket, error)
	TicketByMessageID(ctx context.Context, id string) (string, bool, error)
	UpdateTicket(ctx context.Context, id string, ch store.Change) (domain.Ticket, bool, error)
	AppendEvent(ctx context.Context, id string, ev domain.Event, dedupKey string) (bool, error)
}

// thread finds the ticket m belongs to. For a customer (contract is the
// sender's contract id, "" for an unknown sender) a subject tag threads only
// to a ticket of that same contract; staff may name any ticket. The
// In-Reply-To and References headers thread to any ticket whose messages
// (incoming or ours) they name.
func (p *Pipeline) thread(ctx context.Context, m *domain.Message, contract string, staff bool) (domain.Ticket, string, bool, error) {
	cs, ok := p.Store.(ConversationStore)
	if !ok {
		return domain.Ticket{}, "", false, nil
	}
	for _, tag := range conversation.FindTags(m.Subject) {
		ct := p.Cfg.ContractByPrefix(tag.Prefix)
		tagContract := ""
		if ct != nil {
			tagContract = ct.ID
		} else if !strings.EqualFold(tag.Prefix, rules.NoContractPrefix) {
			continue // not one of our prefixes
		}
		if !staff && tagContract != contract {
			continue // another contract's ticket does not thread
		}
		t, err := cs.Ticket(ctx, tag.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return domain.Ticket{}, "", false, fmt.Errorf("look up ticket %s: %w", tag.ID, err)
		}
		if !staff && t.Contract != contract {
			continue
		}
		return t, SignalTag, true, nil
	}
	ms, ok := p.Store.(multiMessageIDStore)
	if !ok {
		ms = oneByOne{cs}
	}
	return threadByIDs(ctx, cs, ms, m)
}

// multiMessageIDStore looks several Message-IDs up in one round trip
// (implemented by *store.Store).
type multiMessageIDStore interface {
	TicketsByMessageIDs(ctx context.Context, ids []string) ([]string, error)
}

// oneByOne looks Message-IDs up one at a time with a ConversationStore's
// TicketByMessageID, stopping at the first that names an existing ticket
// (the rest are ""): the look-up of a store without TicketsByMessageIDs,
// or one whose TicketByMessageID does more than read (the rebuild's).
type oneByOne struct{ cs ConversationStore }

func (o oneByOne) TicketsByMessageIDs(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		t, ok, err := o.cs.TicketByMessageID(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if _, err := o.cs.Ticket(ctx, t); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out[i] = t
		break
	}
	return out, nil
}

// threadByIDs is thread's In-Reply-To and References look-up: every
// referenced Message-ID at once, in one round trip where the store can
// (each once: In-Reply-To is usually the last of References too), then the
// first that names a ticket, in order: In-Reply-To, then References, most
// recent first.
func threadByIDs(ctx context.Context, cs ConversationStore, ms multiMessageIDStore, m *domain.Message) (domain.Ticket, string, bool, error) {
	var ids, signals []string
	seen := make(map[string]bool, len(m.InReplyTo)+len(m.References))
	add := func(list []string, signal string) {
		for i := len(list) - 1; i >= 0; i-- {
			if k := store.NormalizeMessageID(list[i]); k != "" && !seen[k] {
				seen[k] = true
				ids, signals = append(ids, list[i]), append(signals, signal)
			}
		}
	}
	add(m.InReplyTo, SignalInReplyTo)
	add(m.References, SignalReferences)
	if len(ids) == 0 {
		return domain.Ticket{}, "", false, nil
	}
	found, err := ms.TicketsByMessageIDs(ctx, ids)
	if err != nil {
		return domain.Ticket{}, "", false, fmt.Errorf("look up message-id: %w", err)
	}
	for i, id := range found {
		if id == "" {
			continue
		}
		t, err := cs.Ticket(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return domain.Ticket{}, "", false, fmt.Errorf("look up ticket %s: %w", id, err)
		}
		return t, signals[i], true, nil
	}
	return domain.Ticket{}, "", false, nil
}

// repliesToOurAutomaticMail reports whether m answers mail the gateway sent
// automatically (an acknowledgement or a notice): such a message never gets
// another automatic reply, which ends loops with autoresponders and other
// gateways that ignore Auto-Submitted.
func (p *Pipeline) repliesToOurAutomaticMail(m *domain.Message) bool {
	dom := "@" + strings.ToLower(domainOf(p.Cfg.Service.Address))
	for _, id := range append(append([]string{}, m.InReplyTo...), m.References...) {
		l := strings.ToLower(id)
		if strings.HasSuffix(l, dom) && (strings.HasPrefix(l, "ack.") || strings.HasPrefix(l, "notice.") ||
			strings.HasPrefix(l, "resolved.") || strings.HasPrefix(l, "cmderr.") || strings.HasPrefix(l, "sla.")) {
			return true
		}
	}
	return false
}

// allowAutomatic applies the per-ticket cap on automatic mail (10 per 10
// minutes and 100 per 10 hours, as Zammad does), keyed by the message.
func (p *Pipeline) allowAutomatic(ctx context.Context, ticketID, msgKey string, at time.Time) (bool, error) {
	ok, err := p.Store.AllowAck(ctx, "ticket-10m:"+ticketID, msgKey, at, 10, 10*time.Minute)
	if err != nil || !ok {
		return ok, err
	}
	return p.Store.AllowAck(ctx, "ticket-10h:"+ticketID, msgKey, at, 100, 10*time.Hour)
}

// recordAutomatic notes automatic mail (a bounce of our acknowledgement, an
// out-of-office reply) on the ticket it refers to, without answering it.
func (p *Pipeline) recordAutomatic(ctx context.Context, dec Decision, raw *Original, t domain.Ticket, signal string, log *slog.Logger) (Outcome, error) {
	cs := p.Store.(ConversationStore)
	m := dec.Msg
	key := dedupKey(m, raw)
	ev := domain.Event{Kind: domain.EventAutomatic, At: m.Received, MessageID: m.MessageID, Actor: m.From.Addr,
		Data: map[string]string{"kind": dec.Class.AckReason, "evidence": m.AutoWhy, "thread": signal, "subject": truncate(m.Subject, 200)}}
	if _, err := cs.AppendEvent(ctx, t.ID, ev, key); err != nil {
		return Outcome{}, fmt.Errorf("record automatic mail on %s: %w", t.ID, err)
	}
	log.Info("automatic mail recorded on its ticket", "ticket", t.ID, "reason", dec.Class.AckReason, "thread", signal)
	return Outcome{Ticket: t, Decision: dec, Action: "automatic"}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// followUp joins a customer's reply to its ticket: a resolved ticket inside
// the reopen window is reopened, a pending one resumes its SLA clock, and the
// message is forwarded to the staff queue. It gets no acknowledgement. A
// reply to a closed ticket, or to a resolved one after the window, opens a
// new ticket that refers to the old one.
func (p *Pipeline) followUp(ctx context.Context, dec Decision, raw *Original, t domain.Ticket, signal string, log *slog.Logger) (Outcome, error) {
	cs := p.Store.(ConversationStore)
	m := dec.Msg
	key := dedupKey(m, raw)
	window := p.Cfg.Limits.ReopenWindow
	if window <= 0 {
		window = 7 * 24 * time.Hour
	}
	switch {
	case t.Status == domain.StatusClosed,
		t.Status == domain.StatusResolved && !t.Resolved.IsZero() && m.Received.Sub(t.Resolved) > window:
		log.Info("reply to a finished ticket opens a new one", "old_ticket", t.ID, "status", t.Status)
		return p.openTicketRef(ctx, dec, raw, log, t.ID)
	}
	reopened := t.Status == domain.StatusResolved
	resumed := t.Status == domain.StatusPending
	ev := domain.Event{Kind: domain.EventFollowUp, At: m.Received, MessageID: m.MessageID, Actor: m.From.Addr,
		Data: map[string]string{"thread": signal}}
	if reopened {
		ev.Kind = domain.EventReopened
	}
	ch := store.Change{Event: &ev, DedupKey: key}
	if reopened {
		// Resolving cancelled the SLA timers; a reopened ticket's
		// deadlines still to come are watched again.
		ch.Timers = timersAfter(t, m.Received)
	}
	// A customer reply resumes a pending ticket: its deadlines move on by
	// the business time it was paused (SPEC §3a).
	var resumedT *domain.Ticket
	if ct := p.Cfg.ContractByID(t.Contract); resumed && ct != nil && ct.Calendar != nil && !t.PausedAt.IsZero() {
		rt, timers := ResumeDeadlines(ct.Calendar, t, t.PausedAt, m.Received)
		resumedT, ch.Timers = &rt, timers
		ev.Data["paused_business"] = (rt.PausedBusiness - t.PausedBusiness).String()
	}
	ch.Mutate = func(x *domain.Ticket) error {
		// Only the requester and people already on the ticket may add
		// copies: anyone else (whose From is not authenticated) could
		// otherwise have staff replies relayed to an outsider.
		if knownParticipant(*x, m.From.Addr) {
			x.Cc = mergeAddresses(x.Cc, customerCopies(p.Cfg, m), x.Requester)
		}
		switch x.Status {
		case domain.StatusResolved:
			x.Status, x.Resolved = domain.StatusOpen, time.Time{}
		case domain.StatusPending:
			x.Status = domain.StatusOpen
			if resumedT != nil {
				x.ResponseDue, x.ResolutionDue = resumedT.ResponseDue, resumedT.ResolutionDue
				x.ResponseWarn, x.ResolutionWarn = resumedT.ResponseWarn, resumedT.ResolutionWarn
				x.PausedBusiness = resumedT.PausedBusiness
			}
			x.PausedAt = time.Time{}
		}
		return nil
	}
	nt, applied, err := cs.UpdateTicket(ctx, t.ID, ch)
	if err != nil {
		return Outcome{}, fmt.Errorf("record follow-up on %s: %w", t.ID, err)
	}
	if err := p.fault("after-update", m); err != nil {
		return Outcome{}, err
	}
	out := Outcome{Ticket: nt, Decision: dec, Action: "follow-up"}
	if applied {
		log.Info("customer follow-up joined its ticket", "ticket", t.ID, "thread", signal, "reopened", reopened, "resumed", resumed)
	}
	ok, err := p.allowAutomatic(ctx, t.ID, key, m.Received)
	if err != nil {
		return out, err
	}
	if !ok {
		log.Warn("follow-up not forwarded: automatic-mail cap of the ticket reached", "ticket", t.ID)
		return out, nil
	}
	e, msgID, err := p.composeForwardOf(ctx, dec, nt, raw, true, reopened)
	if err != nil {
		// Deterministic: retrying would hold the mailbox forever.
		log.Error("follow-up not forwarded: it cannot be composed", "ticket", nt.ID, "err", err)
		return out, nil
	}
	return out, p.queue(ctx, m, nt.ID, nonEmpty(m.MessageID, msgID), []store.OutboxEntry{e})
}

// timersAfter lists the SLA timers of t's deadlines after at: those of a
// ticket that is open again. The response's are left out once a first
// response is recorded.
func timersAfter(t domain.Ticket, at time.Time) []store.Timer {
	d := sla.Deadlines{ResolutionDue: t.ResolutionDue, ResolutionWarn: t.ResolutionWarn}
	if t.FirstResponse.IsZero() {
		d.ResponseDue, d.ResponseWarn = t.ResponseDue, t.ResponseWarn
	}
	var out []store.Timer
	for _, tm := range timersFor(d) {
		if tm.Due.After(at) {
			out = append(out, tm)
		}
	}
	return out
}

func nonEmpty(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// mergeAddresses adds the new addresses to list, without duplicates and
// without the requester, keeping at most 50.
func mergeAddresses(list, add []domain.Address, requester domain.Address) []domain.Address {
	seen := map[string]bool{strings.ToLower(requester.Addr): true}
	var out []domain.Address
	for _, a := range append(append([]domain.Address{}, list...), add...) {
		k := strings.ToLower(a.Addr)
		if k == "" || seen[k] || len(out) >= maxCopies {
			continue
		}
		seen[k] = true
		out = append(out, a)
	}
	return out
}

// knownParticipant reports whether addr is the ticket's requester or one of
// the people it relays to.
func knownParticipant(t domain.Ticket, addr string) bool {
	if strings.EqualFold(addr, t.Requester.Addr) {
		return true
	}
	for _, a := range t.Cc {
		if strings.EqualFold(addr, a.Addr) {
			return true
		}
	}
	return false
}

// maxCopies bounds the people a ticket relays to (a message with 10,000
// recipients must not make the gateway write to all of them).
const maxCopies = 50

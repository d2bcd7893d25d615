package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/classify"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// Store is what the pipeline needs of the state (implemented by *store.Store).
type Store interface {
	Processed(ctx context.Context, ref store.SourceRef) (string, bool, error)
	MarkProcessed(ctx context.Context, ref store.SourceRef, ticketID string) error
	// CreateTicketAck is CreateTicket and, with ack, AllowAck, in one
	// round trip where it can. A wrapper that changes one of those must
	// change it too.
	CreateTicketAck(ctx context.Context, nt store.NewTicket, ack *store.AckLimit) (domain.Ticket, bool, bool, error)
	Enqueue(ctx context.Context, e store.OutboxEntry, now time.Time) (bool, error)
	// CommitMessage is store.IndexMessageIDs, Enqueue of each entry and
	// MarkProcessed, in this order, in one round trip where Redis allows.
	// A wrapper that changes one of those must change it too.
	CommitMessage(ctx context.Context, c store.Commit, now time.Time) ([]bool, error)
	AllowAck(ctx context.Context, sender, msgKey string, now time.Time, limit int, window time.Duration) (bool, error)
}

// ReasonRateLimit is the ack_reason of an acknowledgement suppressed by the
// per-sender rate limit.
const ReasonRateLimit = "rate-limit"

// ReasonInvalidSender is the ack_reason when the From address cannot be
// written to (malformed): the ticket is opened, staff get the copy.
const ReasonInvalidSender = "invalid-sender"

// Outcome says what happened to one message, for logs, metrics and the demo.
type Outcome struct {
	Ticket   domain.Ticket
	Created  bool
	Decision Decision
	Action   string // "ticket", "duplicate", "automatic", "dropped", "unknown-sender", "staff", "already-processed"
}

// Pipeline turns one fetched message into a stored ticket and queued mail.
type Pipeline struct {
	Cfg        *rules.Config
	Classifier *classify.Classifier
	Templates  *notify.Templates
	Store      Store
	Log        *slog.Logger
	Now        func() time.Time
	// OnOutcome, when set, is called after each message is stored.
	OnOutcome func(Outcome)
	// OnQueued, when set, is called with the outgoing mail a message's
	// commit stored, and which entries it added (OutboxSender.Hold).
	OnQueued func(entries []store.OutboxEntry, added []bool)
	// FaultHook is for tests and nil in production. When set, it is called
	// with the message at named steps of storing it: "after-create" (the
	// ticket is stored), "after-update" (a follow-up or staff reply is
	// applied), "before-enqueue" (before the Message-IDs are indexed, the
	// mail queued and the message marked processed, which is one step),
	// "after-enqueue" (after it) and "before-mark" (before the message is
	// marked processed, unless that step did, and moved). An error
	// fails the message at that point, as a crash there would, and the
	// source tries it again later.
	FaultHook func(step string, m *domain.Message) error
}

// fault calls FaultHook at step.
func (p *Pipeline) fault(step string, m *domain.Message) error {
	if p.FaultHook == nil {
		return nil
	}
	if err := p.FaultHook(step, m); err != nil {
		return fmt.Errorf("fault injected %s: %w", step, err)
	}
	return nil
}

// NewPipeline builds a pipeline for cfg.
func NewPipeline(cfg *rules.Config, tmpl *notify.Templates, st Store, log *slog.Logger, now func() time.Time) *Pipeline {
	if now == nil {
		now = time.Now
	}
	return &Pipeline{Cfg: cfg, Classifier: classify.New(cfg), Templates: tmpl, Store: st, Log: log, Now: now}
}

// Handle is an ingest.Handler: it returns nil only once everything the
// message causes is durably stored (ticket, events, timers, outbox), so the
// source may then move it to the processed folder. It is idempotent: the same
// message handled twice (after a crash before the move) yields the same
// ticket and no second mail.
//
// A message without a UID (f.UID == 0: pushed over LMTP, not read from an
// IMAP folder, whose UIDs start at 1) has no per-UID processed marker: every
// such message would share one. Its idempotency rests on the store's
// deduplication by Message-ID (or a hash of the bytes) alone.
func (p *Pipeline) Handle(ctx context.Context, f *ingest.Fetched) error {
	h, err := p.prepare(ctx, f)
	if h == nil || err != nil {
		return err
	}
	defer h.raw.Close()
	out, err := p.process(h.ctx, h.m, h.raw)
	if err != nil {
		return err
	}
	return p.finish(h, out)
}

// handling is one message being handled: its context (its origin, its
// processed marker and its order), the message and its bytes.
type handling struct {
	ctx    context.Context
	f      *ingest.Fetched
	m      *domain.Message
	raw    *Original
	ref    store.SourceRef
	hasUID bool
	mark   *pendingMark
}

// prepare reads and parses f. A nil handling with a nil error is a message
// already processed (its outcome reported): nothing is left to do.
func (p *Pipeline) prepare(ctx context.Context, f *ingest.Fetched) (*handling, error) {
	ref := store.SourceRef{Mailbox: f.Mailbox, UIDValidity: f.UIDValidity, UID: f.UID}
	hasUID := f.UID != 0
	if hasUID && !f.Unprocessed { // the source looked it up for its batch
		if id, ok, err := p.Store.Processed(ctx, ref); err != nil {
			return nil, fmt.Errorf("check processed uid %d: %w", f.UID, err)
		} else if ok {
			p.Log.Info("already processed", "uid", f.UID, "ticket", id)
			p.outcome(Outcome{Ticket: domain.Ticket{ID: id}, Action: "already-processed"})
			return nil, nil
		}
	}
	max := p.Cfg.Limits.MaxMessageBytes
	if max <= 0 {
		max = 64 << 20
	}
	raw, truncated, err := fetchedOriginal(f, max)
	if err != nil {
		return nil, fmt.Errorf("read uid %d: %w", f.UID, err)
	}
	lim := ingest.DefaultLimits()
	lim.MaxMessageBytes = max
	m := ingest.Parse(raw.Reader(), lim)
	if truncated {
		m.Warnings = append(m.Warnings, fmt.Sprintf("message larger than %d bytes: truncated", max))
	}
	m.Received = f.InternalDate
	// Large outgoing copies may refer to the original in the processed
	// folder, where the source moves it once the handler returns; pushed
	// (LMTP, UID 0) mail is filed asynchronously and could be lost before it
	// is, so its copies stay inline.
	if !truncated && f.UID != 0 {
		ctx = withOrigin(ctx, f.Mailbox)
	}
	h := &handling{f: f, m: m, raw: raw, ref: ref, hasUID: hasUID}
	if hasUID {
		// The step that queues the message's mail marks it processed too.
		h.mark = &pendingMark{ref: ref}
		ctx = withPendingMark(ctx, h.mark)
	}
	h.ctx = withOrder(ctx, f)
	return h, nil
}

// finish marks a handled message processed, unless the step that queued
// its mail did, and reports its outcome.
func (p *Pipeline) finish(h *handling, out Outcome) error {
	if err := p.fault("before-mark", h.m); err != nil {
		return err
	}
	if h.hasUID && !h.mark.done {
		if err := p.Store.MarkProcessed(h.ctx, h.ref, out.Ticket.ID); err != nil {
			return fmt.Errorf("mark uid %d processed: %w", h.f.UID, err)
		}
	}
	p.outcome(out)
	return nil
}

func (p *Pipeline) outcome(o Outcome) {
	if p.OnOutcome != nil {
		p.OnOutcome(o)
	}
}

// DedupKey identifies a message across mailboxes, UIDVALIDITY changes and
// rebuilds: its Message-ID, or a hash of its bytes when it has none.
func DedupKey(m *domain.Message, raw []byte) string {
	return dedupKey(m, newOriginal(raw))
}

func (p *Pipeline) process(ctx context.Context, m *domain.Message, raw *Original) (Outcome, error) {
	dec, err := Decide(p.Cfg, p.Classifier, m, m.Received, sla.NoUsage{})
	if err != nil {
		return Outcome{}, err
	}
	return p.processDecided(ctx, dec, raw)
}

// processDecided is process once the message is classified.
func (p *Pipeline) processDecided(ctx context.Context, dec Decision, raw *Original) (Outcome, error) {
	m := dec.Msg
	staff := dec.Class.AckReason == classify.ReasonStaff
	// Parsed and classified side by side with the sender's earlier mail;
	// from here on in its order (OrderKeys), up to releaseOrder.
	if err := takeTurn(ctx); err != nil {
		return Outcome{}, err
	}
	t, signal, found, err := p.thread(ctx, m, dec.Class.Contract, staff)
	if err != nil {
		return Outcome{}, err
	}
	log := p.messageLog(dec)
	switch p.routeOf(dec, found) {
	case routeRecordAutomatic:
		return p.recordAutomatic(ctx, dec, raw, t, signal, log)
	case routeAutomaticFiled:
		log.Info("automatic mail filed without a ticket", "reason", dec.Class.AckReason, "evidence", m.AutoWhy)
		return Outcome{Decision: dec, Action: "automatic"}, nil
	case routeDropped:
		log.Info("dropped by rule", "rules", dec.Class.Rules)
		return Outcome{Decision: dec, Action: "dropped"}, nil
	case routeStaff:
		return p.staffMail(ctx, dec, raw, t, found, signal, log)
	case routeFollowUp:
		return p.followUp(ctx, dec, raw, t, signal, log)
	case routeUnknownReply:
		// A reply to our notice from someone we do not know: telling them
		// again would start a loop with an autoresponder.
		log.Info("reply to our automatic mail from an unknown sender: filed")
		return Outcome{Decision: dec, Action: "automatic"}, nil
	case routeUnknownSender:
		return p.unknownSender(ctx, dec, raw, log)
	}
	return p.openTicket(ctx, p.openDecision(dec), raw, log)
}

func (p *Pipeline) messageLog(dec Decision) *slog.Logger {
	return p.Log.With("message_id", dec.Msg.MessageID, "from", dec.Msg.From.Addr, "contract", dec.Class.Contract)
}

// route is what becomes of a classified message.
type route int

const (
	routeOpen            route = iota // a new ticket
	routeRecordAutomatic              // automatic mail noted on its ticket
	routeAutomaticFiled               // automatic mail without a ticket: filed
	routeDropped                      // dropped by a rule
	routeStaff                        // staff mail: relayed, commands applied
	routeFollowUp                     // a customer's reply to a ticket
	routeUnknownReply                 // an unknown sender's reply to our automatic mail: filed
	routeUnknownSender                // an unknown sender, told so (unknown_senders)
)

// routeOf says what becomes of a classified message; found tells whether
// its thread names a ticket.
func (p *Pipeline) routeOf(dec Decision, found bool) route {
	m := dec.Msg
	staff := dec.Class.AckReason == classify.ReasonStaff
	automatic := m.Auto != domain.Human || dec.Class.AckReason == string(domain.Loop) || dec.Class.AckReason == string(domain.Self)
	switch {
	case automatic && found:
		return routeRecordAutomatic
	case automatic:
		return routeAutomaticFiled
	case dec.Class.Drop:
		return routeDropped
	case staff:
		return routeStaff
	case found:
		return routeFollowUp
	case p.repliesToOurAutomaticMail(m) && dec.Contract == nil:
		return routeUnknownReply
	case dec.Contract == nil && p.Cfg.UnknownSenders != "ticket":
		return routeUnknownSender
	}
	return routeOpen
}

// openDecision is the decision of a message that opens a ticket, its
// acknowledgement withheld from an address that cannot be written to and
// from a reply to our own automatic mail.
func (p *Pipeline) openDecision(dec Decision) Decision {
	m := dec.Msg
	if dec.Class.Ack && !notify.ValidAddress(m.From.Addr) {
		dec.Class.Ack, dec.Class.AckReason = false, ReasonInvalidSender
	}
	if dec.Class.Ack && p.repliesToOurAutomaticMail(m) {
		// A reply to our acknowledgement that no longer threads (its ticket
		// is gone) opens a ticket but is not acknowledged again.
		dec.Class.Ack, dec.Class.AckReason = false, string(domain.Loop)
	}
	return dec
}

func (p *Pipeline) openTicket(ctx context.Context, dec Decision, raw *Original, log *slog.Logger) (Outcome, error) {
	return p.openTicketRef(ctx, dec, raw, log, "")
}

// openTicketRef opens a ticket; refersTo names the earlier ticket it
// continues ("" for none).
func (p *Pipeline) openTicketRef(ctx context.Context, dec Decision, raw *Original, log *slog.Logger, refersTo string) (Outcome, error) {
	m := dec.Msg
	req := p.ticketRequest(dec, raw, refersTo)
	if err := p.fault("before-create", m); err != nil {
		return Outcome{}, err
	}
	var res store.TicketAckResult
	res.Ticket, res.Created, res.Allowed, res.Err = p.Store.CreateTicketAck(ctx, req.Ticket, req.Ack)
	out, ids, entries, err := p.opened(ctx, dec, raw, log, req, res)
	if err != nil {
		return Outcome{}, err
	}
	return out, p.queue(ctx, m, out.Ticket.ID, ids, entries)
}

// ticketRequest is what a new ticket asks of the store: the ticket, and the
// sender's acknowledgement to count when it is to be acknowledged.
func (p *Pipeline) ticketRequest(dec Decision, raw *Original, refersTo string) store.TicketAck {
	m := dec.Msg
	t := ticketFromDecision(p.Cfg, dec)
	t.IMACDate, t.IMACQuotaUse, t.Billable = "", 0, false // reserved by the store
	t.RefersTo = refersTo
	prefix := "T"
	if dec.Contract != nil {
		prefix = dec.Contract.Prefix
	}
	nt := store.NewTicket{
		Ticket:   t,
		Prefix:   prefix,
		DedupKey: dedupKey(m, raw),
		Event: domain.Event{Kind: domain.EventOpened, At: m.Received, MessageID: m.MessageID, Actor: m.From.Addr,
			Data: map[string]string{"category": string(t.Category), "priority": string(t.Priority), "rules": strings.Join(t.Rules, ","), "refers_to": refersTo}},
		Timers: timersFor(dec.Deadlines),
	}
	if dec.IMAC != nil && dec.Contract.IMAC != nil {
		plan := dec.Contract.IMAC
		nt.IMAC = &store.IMACRequest{Candidates: dec.IMACCandidates, MonthlyQuota: plan.MonthlyQuota, PerVisit: plan.PerVisit, Policy: plan.OverQuota}
		nt.Ticket.IMACQuota = plan.MonthlyQuota
	}
	// At most limits.acks_per_sender_per_hour acknowledgements per sender,
	// counted at the messages' arrival times, in the same round trip;
	// asking again for the same message after a crash gives the same
	// answer.
	var ack *store.AckLimit
	if dec.Class.Ack {
		limit := p.Cfg.Limits.AcksPerSenderPerHour
		if limit <= 0 {
			limit = 5
		}
		ack = &store.AckLimit{Sender: strings.ToLower(m.From.Addr), MsgKey: nt.DedupKey, At: m.Received, Limit: limit, Window: time.Hour}
	}
	return store.TicketAck{Ticket: nt, Ack: ack}
}

// opened carries on once the store answered req (res): it composes the
// message's mail and lists what its commit stores (the Message-IDs that
// thread to the ticket and the outgoing mail).
func (p *Pipeline) opened(ctx context.Context, dec Decision, raw *Original, log *slog.Logger, req store.TicketAck, res store.TicketAckResult) (Outcome, []string, []store.OutboxEntry, error) {
	m := dec.Msg
	if res.Err != nil {
		return Outcome{}, nil, nil, fmt.Errorf("create ticket: %w", res.Err)
	}
	ticket, created, allowed, ack := res.Ticket, res.Created, res.Allowed, req.Ack
	// Numbered, its IMAC place reserved and its acknowledgement counted:
	// what is left (composing and queueing this message's mail) need not
	// hold back the sender's next message (OrderKeys).
	releaseOrder(ctx)
	if err := p.fault("after-create", m); err != nil {
		return Outcome{}, nil, nil, err
	}
	log = log.With("ticket", ticket.ID)
	if created {
		log.Info("ticket opened", "category", ticket.Category, "priority", ticket.Priority,
			"response_due", ticket.ResponseDue, "resolution_due", ticket.ResolutionDue, "imac_date", ticket.IMACDate)
	} else {
		log.Info("message already stored: same ticket, nothing new sent")
	}
	out := Outcome{Ticket: ticket, Created: created, Decision: dec, Action: "ticket"}
	if !created {
		out.Action = "duplicate"
	}
	// Outgoing mail is queued idempotently (keys derived from the ticket),
	// so a retry after a crash here queues nothing twice. The Message-IDs
	// are indexed before the mail is queued, so a reply to it always threads
	// (a retry may index an id that is never sent, which is harmless).
	var entries []store.OutboxEntry
	ids := []string{}
	if m.MessageID != "" {
		ids = append(ids, m.MessageID)
	}
	if ack != nil && !allowed {
		log.Info("acknowledgement suppressed by the per-sender rate limit", "limit_per_hour", ack.Limit)
		out.Decision.Class.Ack, out.Decision.Class.AckReason = false, ReasonRateLimit
		dec = out.Decision
	}
	// Composition is deterministic: an error here (a malformed address
	// the customer wrote, a template an admin broke) would fail every retry
	// and hold the mailbox, so it is logged and that mail skipped; the
	// ticket stands.
	if dec.Class.Ack {
		if e, msgID, err := p.composeAck(dec, ticket); err != nil {
			log.Error("acknowledgement not sent: it cannot be composed", "err", err)
		} else {
			ids = append(ids, msgID)
			entries = append(entries, e)
		}
	}
	if e, msgID, err := p.composeForward(ctx, dec, ticket, raw); err != nil {
		log.Error("staff copy not sent: it cannot be composed", "err", err)
	} else {
		ids = append(ids, msgID)
		entries = append(entries, e)
	}
	return out, ids, entries, nil
}

// queue indexes the Message-IDs of a ticket, queues outgoing mail
// (idempotently, by the entries' keys) and marks the message processed, in
// one step: see commit. It is the last thing a handler does.
func (p *Pipeline) queue(ctx context.Context, m *domain.Message, ticketID string, ids []string, entries []store.OutboxEntry) error {
	if err := p.fault("before-enqueue", m); err != nil {
		return err
	}
	if err := p.commit(ctx, ticketID, ids, entries); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	return p.fault("after-enqueue", m)
}

// commit stores what a message leaves once its ticket (if any) is stored:
// the Message-IDs that thread to ticketID (which may be empty when ids
// are), its outgoing mail, and, for a message read from a mailbox, its
// processed marker (in ticketID), in this order and in one round trip
// where Redis allows (store.CommitMessage). Nothing that may fail is done
// after it, so the marker is never written for a message whose handling
// fails.
func (p *Pipeline) commit(ctx context.Context, ticketID string, ids []string, entries []store.OutboxEntry) error {
	mark := pendingMarkFrom(ctx)
	c := commitOf(ticketID, ids, entries, mark)
	added, err := p.Store.CommitMessage(ctx, c, p.Now())
	return p.committed(c, mark, added, err)
}

// commitOf is the store.Commit of a message's ticket, Message-IDs and
// mail, with its processed marker when mark is set.
func commitOf(ticketID string, ids []string, entries []store.OutboxEntry, mark *pendingMark) store.Commit {
	c := store.Commit{TicketID: ticketID, IDs: ids, Entries: entries}
	if mark != nil {
		c.Processed = &mark.ref
	}
	return c
}

// committed records how a message's commit c ended (the store's answer
// added, err): the mail it queued goes to OnQueued and its processed
// marker is done.
func (p *Pipeline) committed(c store.Commit, mark *pendingMark, added []bool, err error) error {
	if err != nil {
		return fmt.Errorf("index message ids and queue mail: %w", err)
	}
	if p.OnQueued != nil && len(c.Entries) > 0 {
		p.OnQueued(c.Entries, added)
	}
	if mark != nil {
		mark.done = true
	}
	return nil
}

// pendingMark is the processed marker of the message being handled: done
// once commit wrote it.
type pendingMark struct {
	ref  store.SourceRef
	done bool
}

type pendingMarkKey struct{}

func withPendingMark(ctx context.Context, m *pendingMark) context.Context {
	return context.WithValue(ctx, pendingMarkKey{}, m)
}

func pendingMarkFrom(ctx context.Context) *pendingMark {
	m, _ := ctx.Value(pendingMarkKey{}).(*pendingMark)
	return m
}

// timersFor lists the SLA timers of a ticket's deadlines.
func timersFor(d sla.Deadlines) []store.Timer {
	var ts []store.Timer
	add := func(kind string, at time.Time) {
		if !at.IsZero() {
			ts = append(ts, store.Timer{Kind: kind, Due: at})
		}
	}
	add("response-warn", d.ResponseWarn)
	add("response-breach", d.ResponseDue)
	add("resolution-warn", d.ResolutionWarn)
	add("resolution-breach", d.ResolutionDue)
	return ts
}

// customerCopies are the people the customer copied, without the gateway's
// own addresses and staff (SPEC §2 flow 3).
func customerCopies(cfg *rules.Config, m *domain.Message) []domain.Address {
	var out []domain.Address
	seen := map[string]bool{strings.ToLower(m.From.Addr): true}
	for _, a := range append(append([]domain.Address{}, m.To...), m.Cc...) {
		k := strings.ToLower(a.Addr)
		if k == "" || seen[k] || cfg.IsOwnAddress(k) || cfg.IsStaff(k) || !notify.ValidAddress(a.Addr) {
			continue // a malformed address would make every later relay fail
		}
		seen[k] = true
		out = append(out, a)
		if len(out) == maxCopies {
			break
		}
	}
	return out
}

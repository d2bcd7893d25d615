package service

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/store"
)

// Rebuilding the state from the processed folders (SPEC §5: the processed
// folder is the system of record; §3a: state rebuilt from the mailbox yields
// the same deadlines).
//
// After Redis lost its data, every message of every mailbox's processed
// folder goes once more through the pipeline (Pipeline.Handle, the very
// code `gateway run` uses), in the order the mail server received them
// (INTERNALDATE, then mailbox, then UID), with a store that sends nothing:
//
//   - Outgoing mail (acknowledgements, staff copies, relays, notices) is
//     composed and discarded; nothing is queued, nothing is sent.
//   - The per-UID processed markers are neither read nor written (they name
//     INBOX UIDs, and the Message-ID deduplication already makes the rebuild
//     idempotent: running it twice changes nothing).
//   - Rate limits (acknowledgements per sender, automatic mail per ticket)
//     are counted at the messages' arrival times as before, so they decide
//     as they decided then.
//   - Mail that replies to the gateway's own mail (acknowledgements, staff
//     copies, relays) threads as before: the Message-IDs the gateway sent
//     were lost with Redis, but they carry the ticket id
//     ("ack.ACME-0042.<random>@..."), and a reply naming one joins that
//     ticket and indexes the id again. The fresh ids of the discarded mail
//     are not indexed (they were never sent).
//   - SLA timers due at or after the rebuild's "now" are stored and fire as
//     usual once the gateway runs. Timers due before it are never stored:
//     they are replayed in time order between the messages, each at its own
//     instant, with the timer worker's own rules (void when the ticket was
//     answered, resolved, paused or moved), so a missed deadline is recorded
//     on its ticket as a breach, as the running gateway recorded it, but no
//     warning or breach notice is mailed for deadlines long past.
//
// The ticket numbers come out the same when the processed folders hold
// every message the gateway handled, in the order it handled them. A
// message removed from a folder shifts the numbers of the tickets after it;
// the rebuild counts replies whose references name another ticket than the
// one they joined (RebuildStats.ThreadMismatches) and logs each.
//
// Mail that was queued but not yet sent when Redis lost its data is not
// sent again (it cannot be told apart from mail that was sent).

// RebuildOptions tune Rebuild and NewRebuilder.
type RebuildOptions struct {
	// Now separates the past from the future: SLA timers due before it are
	// replayed silently, later ones are stored. Default time.Now (read once,
	// when the rebuild starts).
	Now func() time.Time
	Log *slog.Logger
	// IMAPOptions are extra options of the IMAP connections (dialer, TLS).
	IMAPOptions []ingest.SourceOption
	// Force rebuilds into a store that already holds tickets (the rebuild
	// is idempotent, but messages handled since Redis lost its data have
	// taken ticket numbers the rebuild will hand out again).
	Force bool
	// Owner names the rebuild in the mailbox leases, which it holds while
	// it runs so that no gateway reads the mailboxes meanwhile; default
	// "rebuild/" + InstanceID().
	Owner string
	// LeaseTTL is the mailbox lease's time to live; default DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// RebuildStats says what a rebuild did.
type RebuildStats struct {
	Messages int            // messages handled
	Deleted  int            // messages flagged \Deleted in the processed folders: left out
	Actions  map[string]int // Outcome.Action -> messages
	Tickets  int            // tickets created
	// MailNotSent counts the mails the messages (and replayed timers)
	// would have queued: composed and discarded.
	MailNotSent int
	// Breaches are deadlines that passed before Now without an answer:
	// recorded on their tickets, not notified.
	Breaches int
	// WarningsSkipped are warning instants that passed before Now while the
	// ticket was open: no notice.
	WarningsSkipped int
	// TimersVoid are past timers that no longer applied when they came due
	// (answered, resolved, paused, moved).
	TimersVoid int
	// Timers is the number of SLA timers stored (all due at or after Now).
	Timers int
	// ThreadMismatches counts messages that reply to mail the gateway sent
	// about one ticket but joined another: a sign that the ticket numbers
	// differ from the original ones (see the log).
	ThreadMismatches int
}

// Rebuilder replays messages into a store without sending anything. Feed
// it the messages of the processed folders in INTERNALDATE order with
// Handle, then call Finish. It is not safe for concurrent use. Rebuild does
// all of it from the IMAP server.
type Rebuilder struct {
	cfg    *rules.Config
	st     *store.Store
	rs     *rebuildStore
	p      *Pipeline
	tw     *TimerWorker
	log    *slog.Logger
	now    time.Time
	clock  time.Time // the timer worker's clock while replaying
	last   time.Time // INTERNALDATE of the previous message
	stats  RebuildStats
	past   map[timerRef]pastTimer // timers due before now, not stored
	queue  timerQueue             // the same, by due time (with stale entries)
	domain string                 // of the support address, lower case
}

type timerRef struct{ ticket, kind string }

type pastTimer struct {
	contract string
	due      time.Time
}

// NewRebuilder prepares a rebuild into st. The timer instants before
// opt.Now are replayed, later ones stored.
func NewRebuilder(cfg *rules.Config, tmpl *notify.Templates, st *store.Store, opt RebuildOptions) *Rebuilder {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Rebuilder{
		cfg: cfg, st: st, log: log, now: now(),
		past:   map[timerRef]pastTimer{},
		domain: strings.ToLower(domainOf(cfg.Service.Address)),
	}
	r.stats.Actions = map[string]int{}
	r.rs = &rebuildStore{Store: st, r: r}
	r.p = NewPipeline(cfg, tmpl, r.rs, log.With("component", "pipeline"), func() time.Time { return r.now })
	r.p.OnOutcome = r.outcome
	r.tw = &TimerWorker{Cfg: cfg, Store: r.rs, Templates: tmpl, Log: log.With("component", "timers"),
		Now: func() time.Time { return r.clock }}
	r.tw.init()
	return r
}

// Handle replays one message: first the past timers due before it, then
// the message itself through the pipeline.
func (r *Rebuilder) Handle(ctx context.Context, f *ingest.Fetched) error {
	if f.InternalDate.Before(r.last) {
		r.log.Warn("rebuild: message out of time order", "mailbox", f.Mailbox, "uid", f.UID,
			"internal_date", f.InternalDate, "previous", r.last)
	} else {
		r.last = f.InternalDate
	}
	if err := r.replay(ctx, f.InternalDate); err != nil {
		return err
	}
	if err := r.p.Handle(ctx, f); err != nil {
		return fmt.Errorf("handle %s uid %d: %w", f.Folder, f.UID, err)
	}
	r.stats.Messages++
	return nil
}

// Finish replays the timers due before Now and returns the statistics.
func (r *Rebuilder) Finish(ctx context.Context) (RebuildStats, error) {
	if err := r.replay(ctx, r.now); err != nil {
		return r.stats, err
	}
	contracts := make([]string, 0, len(r.cfg.Contracts)+1)
	for _, c := range r.cfg.Contracts {
		contracts = append(contracts, c.ID)
	}
	contracts = append(contracts, "")
	r.stats.Timers = 0
	for _, c := range contracts {
		n, err := r.st.TimerCount(ctx, c)
		if err != nil {
			return r.stats, err
		}
		r.stats.Timers += int(n)
	}
	return r.stats, nil
}

// replay fires the past timers due before t, in due order, each with the
// worker's clock at its due instant. They were never stored, so the
// worker's claim and acknowledgement are skipped.
func (r *Rebuilder) replay(ctx context.Context, t time.Time) error {
	for r.queue.Len() > 0 && r.queue.items[0].due.Before(t) {
		q := heap.Pop(&r.queue).(queuedTimer)
		ref := timerRef{q.ticket, q.kind}
		cur, ok := r.past[ref]
		if !ok || !cur.due.Equal(q.due) {
			continue // cancelled or replaced since
		}
		delete(r.past, ref)
		r.clock = q.due
		out, err := r.tw.fire(ctx, store.TimerEntry{Contract: cur.contract, Ticket: q.ticket, Kind: q.kind, Due: q.due})
		if err != nil {
			return fmt.Errorf("rebuild: replay timer %s of %s: %w", q.kind, q.ticket, err)
		}
		switch out.Action {
		case TimerBreached:
			r.stats.Breaches++
		case TimerWarned:
			r.stats.WarningsSkipped++
		default:
			r.stats.TimersVoid++
		}
	}
	return nil
}

// outcome counts a handled message and checks its threading.
func (r *Rebuilder) outcome(o Outcome) {
	r.stats.Actions[o.Action]++
	if o.Created {
		r.stats.Tickets++
	}
	m := o.Decision.Msg
	if m == nil || o.Ticket.ID == "" {
		return
	}
	refs := append(slices.Clone(m.References), m.InReplyTo...) // In-Reply-To is the most recent
	for i := len(refs) - 1; i >= 0; i-- {
		named, ok := r.ownTicketID(refs[i], false)
		if !ok {
			continue
		}
		if !strings.EqualFold(named, o.Ticket.ID) && !strings.EqualFold(named, o.Ticket.RefersTo) {
			r.stats.ThreadMismatches++
			r.log.Warn("rebuild: a reply to mail about one ticket joined another: ticket numbers may differ from the original ones",
				"message_id", m.MessageID, "replies_to_ticket", named, "joined", o.Ticket.ID)
		}
		return
	}
}

// ownTicketID returns the ticket named in a Message-ID the gateway
// generated ("<kind>.<ticket>.<random>@<support domain>", see
// notify.NewMessageID). indexedOnly limits it to the kinds the pipeline
// indexes for threading (acknowledgements, staff copies, relays, resolved
// notices): replies to the others (SLA notices, command errors) do not
// thread by their headers.
func (r *Rebuilder) ownTicketID(id string, indexedOnly bool) (string, bool) {
	local, dom, ok := strings.Cut(store.NormalizeMessageID(id), "@")
	if !ok || strings.ToLower(dom) != r.domain {
		return "", false
	}
	parts := strings.Split(local, ".")
	if len(parts) != 3 {
		return "", false
	}
	switch parts[0] {
	case "ack", "fwd", "relay", "resolved":
	case "cmderr", "sla", "notice":
		if indexedOnly {
			return "", false
		}
	default:
		return "", false
	}
	if _, _, ok := store.ParseTicketID(parts[1]); !ok {
		return "", false
	}
	return parts[1], true
}

// rebuildStore is the store the rebuild's pipeline and timer worker use:
// the real one, except that nothing is queued for sending, processed
// markers are skipped, and timers due before the rebuild's now are kept
// in memory for the replay instead of being stored.
type rebuildStore struct {
	*store.Store
	r *Rebuilder
}

func (s *rebuildStore) Processed(context.Context, store.SourceRef) (string, bool, error) {
	return "", false, nil
}

func (s *rebuildStore) MarkProcessed(context.Context, store.SourceRef, string) error { return nil }

func (s *rebuildStore) Enqueue(context.Context, store.OutboxEntry, time.Time) (bool, error) {
	s.r.stats.MailNotSent++
	return false, nil
}

// AckTimer: replayed timers were never stored or claimed.
func (s *rebuildStore) AckTimer(context.Context, store.TimerEntry) error { return nil }

// IndexMessageIDs leaves out the fresh ids of the mail the rebuild
// composed and discarded: they were never sent.
func (s *rebuildStore) IndexMessageIDs(ctx context.Context, ticketID string, ids ...string) error {
	var keep []string
	for _, id := range ids {
		if _, own := s.r.ownTicketID(id, false); !own {
			keep = append(keep, id)
		}
	}
	return s.Store.IndexMessageIDs(ctx, ticketID, keep...)
}

// CommitMessage is IndexMessageIDs (which leaves out the ids of the mail
// not sent) without the Enqueue and the MarkProcessed.
func (s *rebuildStore) CommitMessage(ctx context.Context, c store.Commit, _ time.Time) ([]bool, error) {
	s.r.stats.MailNotSent += len(c.Entries)
	added := make([]bool, len(c.Entries))
	if len(c.IDs) == 0 {
		return added, nil
	}
	return added, s.IndexMessageIDs(ctx, c.TicketID, c.IDs...)
}

// TicketByMessageID falls back, for a Message-ID the gateway sent before
// Redis lost its data, to the ticket the id names, when that ticket
// exists; the id is then indexed again.
func (s *rebuildStore) TicketByMessageID(ctx context.Context, id string) (string, bool, error) {
	t, ok, err := s.Store.TicketByMessageID(ctx, id)
	if err != nil || ok {
		return t, ok, err
	}
	named, own := s.r.ownTicketID(id, true)
	if !own {
		return "", false, nil
	}
	tk, err := s.Store.Ticket(ctx, named)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if err := s.Store.IndexMessageIDs(ctx, tk.ID, id); err != nil {
		return "", false, err
	}
	return tk.ID, true, nil
}

// TicketsByMessageIDs overrides the store's one-round-trip look-up, which
// would bypass the fallback above: the ids are looked up one by one, with
// it, as the pipeline looks them up in a store without the batch look-up.
func (s *rebuildStore) TicketsByMessageIDs(ctx context.Context, ids []string) ([]string, error) {
	return oneByOne{s}.TicketsByMessageIDs(ctx, ids)
}

// CreateTicketAck stores the ticket with its future timers and keeps the
// past ones for the replay.
func (s *rebuildStore) CreateTicketAck(ctx context.Context, nt store.NewTicket, ack *store.AckLimit) (domain.Ticket, bool, bool, error) {
	future, past := s.r.split(nt.Timers)
	nt.Timers = future
	t, created, allowed, err := s.Store.CreateTicketAck(ctx, nt, ack)
	if err == nil && created {
		s.r.keepPast(t.Contract, t.ID, past)
	}
	return t, created, allowed, err
}

// UpdateTicket applies the change with its future timers; past timers
// replace (or cancel) the same kinds in memory and in the store.
func (s *rebuildStore) UpdateTicket(ctx context.Context, id string, ch store.Change) (domain.Ticket, bool, error) {
	future, past := s.r.split(ch.Timers)
	ch.Timers = future
	for _, tm := range past {
		if !slices.Contains(ch.CancelTimers, tm.Kind) {
			ch.CancelTimers = append(ch.CancelTimers, tm.Kind) // a stored one of that kind is replaced
		}
	}
	t, applied, err := s.Store.UpdateTicket(ctx, id, ch)
	if err != nil || !applied {
		return t, applied, err
	}
	for _, k := range ch.CancelTimers {
		delete(s.r.past, timerRef{t.ID, k})
	}
	for _, tm := range future {
		delete(s.r.past, timerRef{t.ID, tm.Kind})
	}
	s.r.keepPast(t.Contract, t.ID, past)
	return t, applied, err
}

// AppendEvent goes through UpdateTicket (breach events of replayed timers).
func (s *rebuildStore) AppendEvent(ctx context.Context, id string, ev domain.Event, dedupKey string) (bool, error) {
	_, added, err := s.UpdateTicket(ctx, id, store.Change{Event: &ev, DedupKey: dedupKey})
	return added, err
}

// split separates the timers due at or after now from the earlier ones.
func (r *Rebuilder) split(ts []store.Timer) (future, past []store.Timer) {
	for _, tm := range ts {
		if tm.Due.Before(r.now) {
			past = append(past, tm)
		} else {
			future = append(future, tm)
		}
	}
	return future, past
}

func (r *Rebuilder) keepPast(contract, ticket string, past []store.Timer) {
	for _, tm := range past {
		r.past[timerRef{ticket, tm.Kind}] = pastTimer{contract: contract, due: tm.Due}
		heap.Push(&r.queue, queuedTimer{due: tm.Due, ticket: ticket, kind: tm.Kind, seq: r.queue.seq})
		r.queue.seq++
	}
}

// queuedTimer is a past timer waiting for its replay.
type queuedTimer struct {
	due          time.Time
	ticket, kind string
	seq          int // insertion order, for ties
}

// timerQueue is a min-heap of past timers by due time.
type timerQueue struct {
	items []queuedTimer
	seq   int
}

func (q timerQueue) Len() int { return len(q.items) }
func (q timerQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	return cmp.Or(a.due.Compare(b.due), cmp.Compare(a.seq, b.seq)) < 0
}
func (q timerQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *timerQueue) Push(x any)   { q.items = append(q.items, x.(queuedTimer)) }
func (q *timerQueue) Pop() any {
	n := len(q.items)
	x := q.items[n-1]
	q.items = q.items[:n-1]
	return x
}

// MailboxIMAPConfig is the IMAP configuration of a configured mailbox, as
// the gateway reads it, with an OAuth token source when the mailbox has an
// oauth: block (its rotated refresh tokens saved in saved, when not nil).
func MailboxIMAPConfig(mb rules.Mailbox, log *slog.Logger, saved oauth.RefreshTokenStore) (ingest.IMAPConfig, error) {
	tokens, err := newTokenSource(mb.OAuth, mb.Address, log, nil, saved)
	if err != nil {
		return ingest.IMAPConfig{}, fmt.Errorf("mailbox %s: %w", mb.Address, err)
	}
	ic := ingest.IMAPConfig{
		Addr: net.JoinHostPort(mb.Host, strconv.Itoa(mb.Port)), TLS: mb.TLS,
		AllowPlaintext: mb.AllowPlaintext, InsecureSkipVerify: mb.InsecureSkipVerify,
		Username: mb.Username, Password: mb.Password.Reveal(), Auth: imapAuth(mb.Auth), TokenSource: tokens,
		Folder: mb.Folder, ProcessedFolder: mb.ProcessedFolder, Name: mb.Address,
		IDLE: mb.IDLE, PollInterval: mb.PollInterval,
	}
	if err := ic.Validate(); err != nil {
		return ic, fmt.Errorf("mailbox %s: %w", mb.Address, err)
	}
	return ic, nil
}

// ErrStateNotEmpty is returned by Rebuild when the store already holds
// tickets and RebuildOptions.Force is not set.
var ErrStateNotEmpty = errors.New("the store already holds tickets")

// Rebuild reconstructs tickets, events, the Message-ID index, IMAC
// counters, rate limits and SLA timers from every configured mailbox's
// processed folder into st, sending nothing (see Rebuilder). It reads the
// folders read-only and holds the mailboxes' leases meanwhile, so it
// refuses to run while a gateway reads a mailbox; stop every instance
// first. Unless opt.Force is set it also refuses a store that already holds
// tickets (ErrStateNotEmpty).
func Rebuild(ctx context.Context, cfg *rules.Config, tmpl *notify.Templates, st *store.Store, opt RebuildOptions) (RebuildStats, error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		opt.Log = log
	}
	owner := opt.Owner
	if owner == "" {
		owner = "rebuild/" + InstanceID()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	release, err := holdLeases(ctx, cancel, st, cfg.Mailboxes, owner, opt.LeaseTTL, log)
	if err != nil {
		return RebuildStats{}, err
	}
	defer release()
	if !opt.Force {
		if err := requireEmpty(ctx, cfg, st); err != nil {
			return RebuildStats{}, err
		}
	}

	type item struct {
		folder *ingest.Folder
		msg    ingest.FolderMessage
		box    int
	}
	var items []item
	deleted := 0
	for i, mb := range cfg.Mailboxes {
		ic, err := MailboxIMAPConfig(mb, log, st)
		if err != nil {
			return RebuildStats{}, err
		}
		f, err := ingest.OpenFolder(ctx, ic, mb.ProcessedFolder, log.With("component", "imap", "mailbox", mb.Address), opt.IMAPOptions...)
		if err != nil {
			return RebuildStats{}, fmt.Errorf("mailbox %s: %w", mb.Address, err)
		}
		defer f.Close()
		deleted += f.Deleted()
		log.Info("rebuild: processed folder listed", "mailbox", mb.Address, "folder", mb.ProcessedFolder,
			"messages", len(f.Messages()), "deleted", f.Deleted(), "uidvalidity", f.UIDValidity())
		for _, m := range f.Messages() {
			items = append(items, item{f, m, i})
		}
	}
	// One timeline over every mailbox: the order the mail servers received
	// the messages in.
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(a.msg.InternalDate.Compare(b.msg.InternalDate), cmp.Compare(a.box, b.box), cmp.Compare(a.msg.UID, b.msg.UID))
	})

	r := NewRebuilder(cfg, tmpl, st, opt)
	log.Info("rebuild: replaying", "messages", len(items), "now", r.now)
	for n, it := range items {
		if err := ctx.Err(); err != nil {
			return r.stats, context.Cause(ctx)
		}
		err := it.folder.Fetch(ctx, it.msg, func(f *ingest.Fetched) error { return r.Handle(ctx, f) })
		if err != nil {
			if c := context.Cause(ctx); c != nil {
				err = c
			}
			return r.stats, fmt.Errorf("rebuild: %w", err)
		}
		if (n+1)%1000 == 0 {
			log.Info("rebuild: progress", "messages", n+1, "of", len(items))
		}
	}
	stats, err := r.Finish(ctx)
	stats.Deleted = deleted
	if err != nil {
		return stats, fmt.Errorf("rebuild: %w", err)
	}
	log.Info("rebuild: done", "messages", stats.Messages, "tickets", stats.Tickets, "mail_not_sent", stats.MailNotSent,
		"breaches_recorded", stats.Breaches, "timers", stats.Timers, "thread_mismatches", stats.ThreadMismatches)
	return stats, nil
}

// requireEmpty refuses a store that already holds tickets.
func requireEmpty(ctx context.Context, cfg *rules.Config, st *store.Store) error {
	ids := []string{""}
	for _, c := range cfg.Contracts {
		ids = append(ids, c.ID)
	}
	total := 0
	for _, c := range ids {
		ts, err := st.TicketsByContract(ctx, c)
		if err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		total += len(ts)
	}
	if total > 0 {
		return fmt.Errorf("rebuild: %w (%d, prefix %q): rebuild into an empty prefix, or force it", ErrStateNotEmpty, total, cfg.Redis.Prefix)
	}
	return nil
}

// errLeaseHeld refuses a rebuild while a gateway reads a mailbox.
var errLeaseHeld = errors.New("mailbox lease held by another instance: stop every gateway before rebuilding")

// holdLeases takes every mailbox's lease for owner and renews it until
// release is called; when a renewal fails, cancel ends the rebuild.
func holdLeases(ctx context.Context, cancel context.CancelCauseFunc, l Leaser, mbs []rules.Mailbox, owner string, ttl time.Duration, log *slog.Logger) (release func(), err error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	var held []string
	releaseAll := func() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer rcancel()
		for _, mb := range held {
			if err := l.ReleaseLease(rctx, mb, owner); err != nil {
				log.Warn("rebuild: release mailbox lease", "mailbox", mb, "err", err)
			}
		}
	}
	for _, mb := range mbs {
		ok, err := l.AcquireLease(ctx, mb.Address, owner, ttl)
		if err != nil {
			releaseAll()
			return nil, fmt.Errorf("rebuild: %w", err)
		}
		if !ok {
			releaseAll()
			return nil, fmt.Errorf("rebuild: %s: %w", mb.Address, errLeaseHeld)
		}
		held = append(held, mb.Address)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, mb := range held {
				actx, acancel := context.WithTimeout(ctx, ttl/3)
				ok, err := l.AcquireLease(actx, mb, owner, ttl)
				acancel()
				if ctx.Err() != nil {
					return
				}
				if err != nil || !ok {
					cancel(fmt.Errorf("mailbox lease of %s lost (held by another: %v, err: %v): stopped so that no gateway reads the mailbox during the rebuild", mb, err == nil, err))
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			releaseAll()
		})
	}, nil
}

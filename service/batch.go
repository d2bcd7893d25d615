package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/northwind-it/ticketgw/conversation"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// HandleBatch handles fs (messages of one folder, in arrival order) as
// Handle would handle each of them in turn, and returns each one's error.
// The new tickets among them are stored together: one round trip looks up
// the threads of every message of a run, one creates the run's new tickets
// (numbered, their IMAC places reserved and their acknowledgements counted
// in arrival order: Redis runs the scripts as listed), and one commits
// them, their mail and their processed markers. Everything else (staff
// mail, follow-ups, automatic mail, a message with a ticket tag in its
// subject) is handled on its own at its place in the order.
//
// A run ends before a message that carries or refers to the Message-ID of
// an earlier message of the run (not merely one that an earlier message
// also refers to): its thread is looked up only once that
// one is stored. A message's thread looked up with the run's is trusted
// only when it names no ticket: nothing the run stores before that message
// can index one of its references (they are not Message-IDs of the run),
// whereas a ticket it names may change on the way, so such a message looks
// its thread up again at its place.
//
// The caller orders the batch as a whole against other messages (the
// source's barrier, ingest.BatchHandler): the Fetched have no Turn or
// Release.
func (p *Pipeline) HandleBatch(ctx context.Context, fs []*ingest.Fetched) []error {
	errs := make([]error, len(fs))
	var run []*batchItem
	seen := map[string]bool{}
	for i, f := range fs {
		h, err := p.prepare(ctx, f)
		if h == nil || err != nil {
			errs[i] = err
			continue
		}
		it := &batchItem{i: i, h: h}
		if runsInto(seen, messageIDKeys(h)) {
			p.handleRun(ctx, run, errs)
			run, seen = nil, map[string]bool{}
		}
		if id := store.NormalizeMessageID(h.m.MessageID); id != "" {
			seen[id] = true
		}
		run = append(run, it)
	}
	p.handleRun(ctx, run, errs)
	return errs
}

// batchItem is one message of a batch.
type batchItem struct {
	i   int // its place in the batch
	h   *handling
	dec Decision
	// looked is set when its thread was looked up with its run's and names
	// no ticket.
	looked bool
	req    store.TicketAck
}

// messageIDKeys are the normalized Message-IDs a message carries and
// refers to.
func messageIDKeys(h *handling) []string {
	m := h.m
	var out []string
	for _, list := range [][]string{{m.MessageID}, m.InReplyTo, m.References} {
		for _, id := range list {
			if k := store.NormalizeMessageID(id); k != "" {
				out = append(out, k)
			}
		}
	}
	return out
}

func runsInto(seen map[string]bool, ids []string) bool {
	for _, id := range ids {
		if seen[id] {
			return true
		}
	}
	return false
}

// handleRun handles a run of a batch: messages none of which carries or
// refers to the Message-ID of another.
func (p *Pipeline) handleRun(ctx context.Context, run []*batchItem, errs []error) {
	if len(run) == 0 {
		return
	}
	defer func() {
		for _, it := range run {
			it.h.raw.Close()
		}
	}()
	var live []*batchItem
	for _, it := range run {
		dec, err := Decide(p.Cfg, p.Classifier, it.h.m, it.h.m.Received, sla.NoUsage{})
		if err != nil {
			errs[it.i] = err
			continue
		}
		it.dec = dec
		live = append(live, it)
	}
	if err := p.lookUpRun(ctx, live); err != nil {
		p.Log.Warn("thread look-up of a batch failed: its messages look theirs up one by one", "err", err)
	}
	var open []*batchItem
	for _, it := range live {
		if it.looked && p.routeOf(it.dec, false) == routeOpen {
			open = append(open, it)
			continue
		}
		p.openTickets(ctx, open, errs)
		open = nil
		out, err := p.processDecided(it.h.ctx, it.dec, it.h.raw)
		if err == nil {
			err = p.finish(it.h, out)
		}
		errs[it.i] = err
	}
	p.openTickets(ctx, open, errs)
}

// lookUpRun looks up, in one round trip, the threads of the run's messages
// that have no ticket tag in their subject (those look theirs up by tag, at
// their place), and sets looked on the ones whose references name no
// ticket.
func (p *Pipeline) lookUpRun(ctx context.Context, run []*batchItem) error {
	if _, ok := p.Store.(ConversationStore); !ok {
		for _, it := range run { // no threads: every message is new
			it.looked = true
		}
		return nil
	}
	ms, ok := p.Store.(multiMessageIDStore)
	if !ok {
		return nil // looked up one by one, at their places
	}
	var ids []string
	var askers []*batchItem
	var spans []int
	for _, it := range run {
		if len(conversation.FindTags(it.dec.Msg.Subject)) > 0 {
			continue
		}
		m := it.dec.Msg
		n := 0
		for _, list := range [][]string{m.InReplyTo, m.References} {
			for _, id := range list {
				if store.NormalizeMessageID(id) != "" {
					ids = append(ids, id)
					n++
				}
			}
		}
		if n == 0 {
			it.looked = true
			continue
		}
		askers, spans = append(askers, it), append(spans, n)
	}
	if len(ids) == 0 {
		return nil
	}
	found, err := ms.TicketsByMessageIDs(ctx, ids)
	if err != nil {
		return fmt.Errorf("look up %d message ids: %w", len(ids), err)
	}
	at := 0
	for i, it := range askers {
		it.looked = !slices.ContainsFunc(found[at:at+spans[i]], func(id string) bool { return id != "" })
		at += spans[i]
	}
	return nil
}

// openTickets opens the tickets of items (messages that open one, in
// order): one round trip creates them, one commits them.
func (p *Pipeline) openTickets(ctx context.Context, items []*batchItem, errs []error) {
	if len(items) == 0 {
		return
	}
	b := p.batcher()
	var asked []*batchItem
	var reqs []store.TicketAck
	for _, it := range items {
		it.dec = p.openDecision(it.dec)
		it.req = p.ticketRequest(it.dec, it.h.raw, "")
		if err := p.fault("before-create", it.h.m); err != nil {
			errs[it.i] = err
			continue
		}
		asked, reqs = append(asked, it), append(reqs, it.req)
	}
	if len(reqs) == 0 {
		return
	}
	res := b.CreateTicketAcks(ctx, reqs)
	type pending struct {
		it  *batchItem
		out Outcome
	}
	var commits []store.Commit
	var waiting []pending
	for k, it := range asked {
		out, ids, entries, err := p.opened(it.h.ctx, it.dec, it.h.raw, p.messageLog(it.dec), it.req, res[k])
		if err == nil {
			err = p.fault("before-enqueue", it.h.m)
		}
		if err != nil {
			errs[it.i] = err
			continue
		}
		commits = append(commits, commitOf(out.Ticket.ID, ids, entries, it.h.mark))
		waiting = append(waiting, pending{it, out})
	}
	if len(commits) == 0 {
		return
	}
	added, cerrs := b.CommitMessages(ctx, commits, p.Now())
	for k, w := range waiting {
		it := w.it
		err := p.committed(commits[k], it.h.mark, added[k], cerrs[k])
		if err == nil && len(commits[k].Entries) > 0 {
			err = p.fault("after-enqueue", it.h.m)
		}
		if err == nil {
			err = p.finish(it.h, w.out)
		}
		errs[it.i] = err
	}
}

// ticketBatcher creates tickets and commits messages several at a time
// (implemented by *store.Store).
type ticketBatcher interface {
	CreateTicketAcks(ctx context.Context, reqs []store.TicketAck) []store.TicketAckResult
	CommitMessages(ctx context.Context, cs []store.Commit, now time.Time) ([][]bool, []error)
}

// batcher is the store's own batches when the pipeline's store is a
// *store.Store, and otherwise the Store's one-at-a-time methods, so that a
// wrapper that changes them (a test's, the rebuild's) is heard.
func (p *Pipeline) batcher() ticketBatcher {
	if s, ok := p.Store.(*store.Store); ok {
		return s
	}
	return oneAtATime{p.Store}
}

// oneAtATime is a ticketBatcher of a Store's one-at-a-time methods.
type oneAtATime struct{ st Store }

func (o oneAtATime) CreateTicketAcks(ctx context.Context, reqs []store.TicketAck) []store.TicketAckResult {
	out := make([]store.TicketAckResult, len(reqs))
	for i, r := range reqs {
		out[i].Ticket, out[i].Created, out[i].Allowed, out[i].Err = o.st.CreateTicketAck(ctx, r.Ticket, r.Ack)
	}
	return out
}

func (o oneAtATime) CommitMessages(ctx context.Context, cs []store.Commit, now time.Time) ([][]bool, []error) {
	added, errs := make([][]bool, len(cs)), make([]error, len(cs))
	for i, c := range cs {
		added[i], errs[i] = o.st.CommitMessage(ctx, c, now)
	}
	return added, errs
}

package harness

import (
	"context"
	"fmt"

	"github.com/northwind-it/ticketgw/store"
)

// Tally counts what the gateway did with a set of customer messages, to
// check exactly-once behaviour: one ticket, one acknowledgement and one
// staff forward per message, nothing else sent, the folder emptied into the
// processed folder and the outbox empty.
type Tally struct {
	Messages        int
	Tickets         int // messages whose Message-ID maps to a ticket
	DistinctTickets int
	Acks, Forwards  int // messages with at least one of each
	DupAcks         int // acknowledgements beyond the first per message
	DupForwards     int
	Other           int // sent mail that is neither (or replies to unknown ids)
	Inbox           int
	Processed       int
	OutboxPending   int64
}

// ExactlyOnce reports whether the tally is the perfect outcome.
func (t Tally) ExactlyOnce() bool {
	n := t.Messages
	return t.Tickets == n && t.DistinctTickets == n && t.Acks == n && t.Forwards == n &&
		t.DupAcks == 0 && t.DupForwards == 0 && t.Other == 0 && t.Inbox == 0 && t.Processed == n && t.OutboxPending == 0
}

func (t Tally) String() string {
	verdict := "EXACTLY ONCE"
	if !t.ExactlyOnce() {
		verdict = "MISMATCH"
	}
	return fmt.Sprintf("%s: messages=%d tickets=%d (distinct %d) acks=%d (+%d dup) forwards=%d (+%d dup) other=%d inbox=%d processed=%d outbox_pending=%d",
		verdict, t.Messages, t.Tickets, t.DistinctTickets, t.Acks, t.DupAcks, t.Forwards, t.DupForwards, t.Other, t.Inbox, t.Processed, t.OutboxPending)
}

// Count builds the tally of ids (the customer Message-IDs) from the
// world's catcher, mailbox and Redis.
func Count(ctx context.Context, w *World, ids []string) (Tally, error) {
	t := Tally{Messages: len(ids)}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	acks := map[string]int{}
	fwds := map[string]int{}
	for _, m := range w.SMTP.Mail() {
		s, err := Classify(m)
		if err != nil {
			return t, err
		}
		switch {
		case !want[s.InReplyTo]:
			t.Other++
		case s.Kind == KindAck:
			acks[s.InReplyTo]++
		case s.Kind == KindForward:
			fwds[s.InReplyTo]++
		default:
			t.Other++
		}
	}
	for _, n := range acks {
		t.Acks++
		t.DupAcks += n - 1
	}
	for _, n := range fwds {
		t.Forwards++
		t.DupForwards += n - 1
	}
	st := store.New(w.Redis, w.Prefix)
	tickets := make(map[string]bool, len(ids))
	for _, id := range ids {
		tid, ok, err := st.TicketByMessageID(ctx, id)
		if err != nil {
			return t, fmt.Errorf("count tickets: %w", err)
		}
		if ok {
			t.Tickets++
			tickets[tid] = true
		}
	}
	t.DistinctTickets = len(tickets)
	var err error
	if t.Inbox, err = w.IMAP.Count(Inbox); err != nil {
		return t, fmt.Errorf("count inbox: %w", err)
	}
	if t.Processed, err = w.IMAP.Count(Processed); err != nil {
		return t, fmt.Errorf("count processed folder: %w", err)
	}
	if t.OutboxPending, _, err = st.OutboxDepth(ctx); err != nil {
		return t, fmt.Errorf("outbox depth: %w", err)
	}
	return t, nil
}

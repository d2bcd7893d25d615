package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/store"
)

// Kinds of mail the gateway sends about a customer message.
const (
	KindAck     = "ack"     // to the customer: Auto-Submitted: auto-replied
	KindForward = "forward" // to the staff queue
	KindOther   = "other"
)

// Sent is one message the catcher accepted, classified.
type Sent struct {
	Kind      string
	InReplyTo string // the customer's Message-ID, without angle brackets
	TicketID  string // X-Ticket-ID
	At        time.Time
}

// Classify reads the header of mail the gateway sent.
func Classify(m localmail.Mail) (Sent, error) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(m.Raw)))
	h, err := r.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return Sent{}, fmt.Errorf("read header of sent mail: %w", err)
	}
	s := Sent{
		InReplyTo: store.NormalizeMessageID(h.Get("In-Reply-To")),
		TicketID:  strings.TrimSpace(h.Get("X-Ticket-Id")),
		At:        m.At,
		Kind:      KindOther,
	}
	switch {
	case slices.Contains(m.To, QueueAddress):
		s.Kind = KindForward
	case strings.EqualFold(strings.TrimSpace(h.Get("Auto-Submitted")), "auto-replied"):
		s.Kind = KindAck
	}
	return s, nil
}

// Tracker follows the catcher's mail as it arrives, for waiting on the
// acknowledgement and forward of one customer message.
type Tracker struct {
	c    *localmail.Catcher
	next int                        // mail already looked at
	seen map[string]map[string]Sent // Message-ID -> kind -> first one
}

// NewTracker follows c from its current mail on.
func NewTracker(c *localmail.Catcher) *Tracker {
	return &Tracker{c: c, next: len(c.Mail()), seen: make(map[string]map[string]Sent)}
}

// Wait returns the first acknowledgement and forward sent in reply to the
// customer message id, waiting for them until ctx ends.
func (t *Tracker) Wait(ctx context.Context, id string) (ack, fwd Sent, err error) {
	for {
		if k := t.seen[id]; k != nil {
			a, okA := k[KindAck]
			f, okF := k[KindForward]
			if okA && okF {
				return a, f, nil
			}
		}
		if _, err := t.c.WaitFor(ctx, t.next+1); err != nil {
			return Sent{}, Sent{}, fmt.Errorf("wait for the acknowledgement and forward of %s: %w", id, err)
		}
		all := t.c.Mail()
		for _, m := range all[t.next:] {
			s, err := Classify(m)
			if err != nil {
				return Sent{}, Sent{}, err
			}
			if t.seen[s.InReplyTo] == nil {
				t.seen[s.InReplyTo] = make(map[string]Sent, 2)
			}
			if _, dup := t.seen[s.InReplyTo][s.Kind]; !dup {
				t.seen[s.InReplyTo][s.Kind] = s
			}
		}
		t.next = len(all)
	}
}

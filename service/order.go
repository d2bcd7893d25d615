package service

import (
	"bytes"
	"context"
	"slices"
	"strings"

	"github.com/northwind-it/ticketgw/conversation"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/rules"
)

// DefaultIMAPWorkers is how many messages of one mailbox are handled at once
// (ingest.WithConcurrency), subject to OrderKeys.
const DefaultIMAPWorkers = 4

// OrderKeys names what a raw message may share with other messages of a
// backlog, for ingest.WithConcurrency: messages that share a key do their
// order-sensitive work one after another in arrival order, the others side
// by side. The keys are
//   - the sender's contract: one customer's mail is handled first come,
//     first served (ticket numbers, IMAC quota places, follow-ups);
//     "staff" for mail from staff and "no-contract" for senders no
//     contract claims;
//   - the contract of every ticket the subject's tags or the gateway's own
//     Message-IDs in In-Reply-To/References name: a staff command (which may
//     move an IMAC date) keeps its place among that customer's mail;
//   - every Message-ID the message carries or refers to, so that a reply
//     never overtakes the message it answers, whoever sent them.
//
// Every message is read, parsed and classified side by side with the
// others, and waits for its turn only before it looks up its thread
// (takeTurn, ingest.OrderKey.AtTurn). Most keys are then held until the
// handler returns. Two are released once a new ticket is numbered, its
// IMAC place reserved and its acknowledgement counted against the sender's
// rate limit (releaseOrder in openTicketRef), so that composing and
// queueing its mail overlaps the next message's turn: the sender's contract
// and a Message-ID it refers to (not its own, which a reply must find
// indexed). So different customers' mail overlaps, and one customer's
// overlaps only where order cannot show.
func (p *Pipeline) OrderKeys(raw []byte) []ingest.OrderKey {
	m := ingest.ParseThreadHeader(bytes.NewReader(raw), ingest.DefaultLimits())
	cfg := p.Cfg
	keys := make([]ingest.OrderKey, 0, 8)
	// Every key is waited for in the handler's turn (takeTurn: parsing and
	// classifying overlap); addKey adds key k, held to the end unless
	// released, and held to the end wins.
	addKey := func(k string, released bool) {
		i := slices.IndexFunc(keys, func(o ingest.OrderKey) bool { return o.Name == k })
		switch {
		case i < 0:
			keys = append(keys, ingest.OrderKey{Name: k, AtTurn: true, Released: released})
		case !released:
			keys[i].Released = false
		}
	}
	add := func(k string) { addKey(k, false) }
	byPrefix := func(prefix string) {
		if c := cfg.ContractByPrefix(prefix); c != nil {
			add("contract:" + c.ID)
		}
	}
	from := strings.ToLower(m.From.Addr)
	contractFor := cfg.ContractFor
	if p.Classifier != nil { // the matcher classification uses
		contractFor = func(a string) *rules.Contract { c, _ := p.Classifier.Contract(a); return c }
	}
	switch c := contractFor(from); {
	case cfg.IsStaff(from):
		add("staff")
	case c != nil:
		addKey("contract:"+c.ID, true)
	default:
		add("no-contract")
	}
	for _, t := range conversation.FindTags(m.Subject) {
		byPrefix(t.Prefix)
	}
	ids := append(append([]string{m.MessageID}, m.InReplyTo...), m.References...)
	for i, id := range ids {
		if id == "" {
			continue
		}
		// Its own Message-ID is held until it is indexed (the end); one it
		// refers to orders it among the other replies only until its
		// ticket is numbered.
		addKey("mid:"+strings.ToLower(id), i > 0)
		// The gateway's own: kind.TICKET-NNNN.random@domain (notify.NewMessageID).
		local, _, _ := strings.Cut(id, "@")
		if parts := strings.Split(local, "."); len(parts) == 3 {
			if tags := conversation.FindTags("[" + parts[1] + "]"); len(tags) == 1 {
				byPrefix(tags[0].Prefix)
			}
		}
	}
	return keys
}

// orderKey is the context key of the handler's ingest.Fetched Turn and
// Release.
type orderKey struct{}

// orderHooks are a message's ingest.Fetched.Turn and Release.
type orderHooks struct {
	turn    func() error
	release func()
}

// withOrder records f's Turn and Release (nil when the source has none)
// for the handler's order-sensitive steps.
func withOrder(ctx context.Context, f *ingest.Fetched) context.Context {
	if f.Turn == nil && f.Release == nil {
		return ctx
	}
	return context.WithValue(ctx, orderKey{}, orderHooks{f.Turn, f.Release})
}

// takeTurn waits until every earlier message of the sender's contract has
// done its order-sensitive work (ingest.OrderKey.AtTurn). Its error
// (ingest.ErrTurnLost: an earlier one was left for the next run) must be
// returned before anything is written.
func takeTurn(ctx context.Context) error {
	if h, _ := ctx.Value(orderKey{}).(orderHooks); h.turn != nil {
		return h.turn()
	}
	return nil
}

// releaseOrder tells the source that the message's order-sensitive work
// is done: the sender's next message may take its turn.
func releaseOrder(ctx context.Context) {
	if h, _ := ctx.Value(orderKey{}).(orderHooks); h.release != nil {
		h.release()
	}
}

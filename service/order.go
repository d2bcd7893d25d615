package service

import (
	"bytes"
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
// backlog, for ingest.WithConcurrency: messages that share a key are handled
// one after another in arrival order, the others side by side. The keys
// are
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
// So different customers' mail overlaps and one customer's does not.
func (p *Pipeline) OrderKeys(raw []byte) []string {
	m := ingest.ParseHeader(bytes.NewReader(raw), ingest.DefaultLimits())
	cfg := p.Cfg
	keys := make([]string, 0, 8)
	add := func(k string) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
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
		add("contract:" + c.ID)
	default:
		add("no-contract")
	}
	for _, t := range conversation.FindTags(m.Subject) {
		byPrefix(t.Prefix)
	}
	ids := append(append([]string{m.MessageID}, m.InReplyTo...), m.References...)
	for _, id := range ids {
		if id == "" {
			continue
		}
		add("mid:" + strings.ToLower(id))
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

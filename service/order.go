package service

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/northwind-it/ticketgw/conversation"
	"github.com/northwind-it/ticketgw/ingest"
)

// DefaultIMAPWorkers is how many messages of one mailbox are handled at once
// (ingest.WithConcurrency), subject to OrderKeys.
const DefaultIMAPWorkers = 4

// OrderKeys names what a raw message may share with other messages of a
// backlog, for ingest.WithConcurrency: messages that share a key are handled
// one after another in arrival order, the others side by side. The keys
// are
//   - the sender's address: one person's mail keeps its order;
//   - "staff" for mail from staff, which is all handled in order;
//   - every ticket the subject's tags or the gateway's own Message-IDs in
//     In-Reply-To/References name: a staff command and the customer's
//     answer on one ticket keep their order;
//   - every Message-ID the message carries or refers to, so that a reply
//     never overtakes the message it answers, whoever sent them.
//
// Messages of one contract from different people may be handled side by
// side: their ticket numbers and IMAC quota places then follow the order in
// which they were stored, which may differ from their arrival by no more
// than the messages in flight (twice the workers).
func (p *Pipeline) OrderKeys(raw []byte) []string {
	m := ingest.ParseHeader(bytes.NewReader(raw), ingest.DefaultLimits())
	cfg := p.Cfg
	keys := make([]string, 0, 8)
	add := func(k string) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	ticket := func(prefix string, number int) {
		if c := cfg.ContractByPrefix(prefix); c != nil {
			add(fmt.Sprintf("ticket:%s-%d", strings.ToUpper(c.Prefix), number))
		}
	}
	from := strings.ToLower(m.From.Addr)
	if cfg.IsStaff(from) {
		add("staff")
	} else {
		add("sender:" + from)
	}
	for _, t := range conversation.FindTags(m.Subject) {
		ticket(t.Prefix, t.Number)
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
				ticket(tags[0].Prefix, tags[0].Number)
			}
		}
	}
	return keys
}

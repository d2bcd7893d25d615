package service

import (
	"context"
	"fmt"
	"testing"

	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/store"
)

// groupSender is a MailSender that may pipeline (manySender).
type groupSender struct{ pipelines bool }

func (groupSender) Send(context.Context, notify.Envelope, []byte) error { return nil }
func (groupSender) SendMany(_ context.Context, msgs []notify.Outgoing) []error {
	return make([]error, len(msgs))
}
func (g groupSender) Pipelines() bool { return g.pipelines }

type plainSender struct{}

func (plainSender) Send(context.Context, notify.Envelope, []byte) error { return nil }

// TestOutboxSendGroups: mail is grouped per session, and eight times as
// much claimed, only when the Sender sends several messages in one write
// (its relay offers CHUNKING and PIPELINING); mail composed from its
// original always goes alone; an explicit Batch stands (review finding: a
// relay without them got 8 sends in a row per worker).
func TestOutboxSendGroups(t *testing.T) {
	entries := make([]store.OutboxEntry, 22)
	for i := range entries {
		entries[i] = store.OutboxEntry{Key: fmt.Sprintf("e%02d", i), Raw: []byte("x")}
	}
	entries[3].Ref, entries[3].Recipe = &store.SourceRef{Mailbox: "support"}, []byte("recipe")
	for _, tc := range []struct {
		name       string
		sender     MailSender
		batch      int
		wantClaim  int
		wantGroups []int
	}{
		{name: "no SendMany", sender: plainSender{}, wantClaim: 4, wantGroups: ones(22)},
		{name: "relay does not pipeline", sender: groupSender{}, wantClaim: 4, wantGroups: ones(22)},
		{name: "relay pipelines", sender: groupSender{pipelines: true}, wantClaim: 32, wantGroups: []int{1, 6, 6, 6, 3}},
		{name: "explicit batch", sender: groupSender{pipelines: true}, batch: 10, wantClaim: 10, wantGroups: []int{1, 6, 6, 6, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &OutboxSender{Sender: tc.sender, Workers: 4, Batch: tc.batch}
			o.init()
			if got := o.claimSize(); got != tc.wantClaim {
				t.Errorf("claim size %d, want %d", got, tc.wantClaim)
			}
			var sizes []int
			seen := 0
			for _, g := range o.sendGroups(entries) {
				sizes = append(sizes, len(g))
				seen += len(g)
				for _, e := range g {
					if e.Ref != nil && len(g) != 1 {
						t.Errorf("an entry composed from its original grouped with %d others", len(g)-1)
					}
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.wantGroups) || seen != len(entries) {
				t.Errorf("groups %v, want %v", sizes, tc.wantGroups)
			}
		})
	}
}

func ones(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCreateTicket measures one ticket creation (one script: dedup,
// id, IMAC slot, ticket, event, four timers) against the real Redis.
func BenchmarkCreateTicket(b *testing.B) {
	s, _ := newTestStore(b)
	ctx := context.Background()
	cands := tuesdays(60)
	i := 0
	for b.Loop() {
		nt := sampleTicket("acme", "ACME", fmt.Sprintf("mid:bench-%d", i), received)
		nt.Timers = []Timer{
			{Kind: ResponseWarn, Due: received.Add(48 * time.Minute)},
			{Kind: ResponseBreach, Due: received.Add(time.Hour)},
			{Kind: ResolutionWarn, Due: received.Add(19 * time.Hour)},
			{Kind: ResolutionBreach, Due: received.Add(24 * time.Hour)},
		}
		if i%3 == 0 {
			nt.IMAC = &IMACRequest{Candidates: cands, Policy: PolicyBillable}
		}
		if _, _, err := s.CreateTicket(ctx, nt); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEnqueueClaimAck measures one outgoing mail's trip through the
// outbox: three scripts.
func BenchmarkEnqueueClaimAck(b *testing.B) {
	s, _ := newTestStore(b)
	ctx := context.Background()
	e := mail("")
	i := 0
	for b.Loop() {
		e.Key = fmt.Sprintf("ack:%d", i)
		if _, err := s.Enqueue(ctx, e, received); err != nil {
			b.Fatal(err)
		}
		got, err := s.ClaimOutbox(ctx, received, time.Minute, 1)
		if err != nil || len(got) != 1 {
			b.Fatal(got, err)
		}
		if err := s.AckOutbox(ctx, got[0].Key, received); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

package store

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// roundTrips counts the client's round trips to Redis (a pipeline is one).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// TestCreateTicketAck: the ticket and the acknowledgement rate limit in one
// round trip once the prefix is known (two for the first ticket of a
// prefix), with AllowAck's answers; after SCRIPT FLUSH (Redis restarted)
// the scripts load again, a lost prefix record is written again, and a
// prefix another contract took meanwhile is refused.
func TestCreateTicketAck(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	for _, sc := range []*redis.Script{claimPrefixScript, createScript, allowAckScript} {
		if err := sc.Load(ctx, rdb).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Warm up: the client's connections (plain and pipeline pools) are
	// opened by another contract's ticket.
	if _, _, _, err := s.CreateTicketAck(ctx, sampleTicket("globex", "GLX", "w1", received),
		&AckLimit{Sender: "w@globex.example", MsgKey: "w1", At: received, Limit: 2, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	rdb.AddHook(rt)
	ack := func(msg string) *AckLimit {
		return &AckLimit{Sender: "yossi@acme.co.il", MsgKey: msg, At: received, Limit: 2, Window: time.Hour}
	}
	steps := []struct {
		dedup       string
		ack         bool
		before      func()
		trips       int64
		wantID      string
		wantCreated bool
		wantAllowed bool
		wantErr     string
	}{
		{dedup: "m1", ack: true, trips: 2, wantID: "ACME-0001", wantCreated: true, wantAllowed: true},
		{dedup: "m2", ack: true, trips: 1, wantID: "ACME-0002", wantCreated: true, wantAllowed: true},
		{dedup: "m3", ack: true, trips: 1, wantID: "ACME-0003", wantCreated: true, wantAllowed: false}, // third in the hour
		{dedup: "m1", ack: true, trips: 1, wantID: "ACME-0001", wantCreated: false, wantAllowed: true}, // asked again
		{dedup: "m4", ack: false, trips: 1, wantID: "ACME-0004", wantCreated: true, wantAllowed: false},
		{dedup: "m5", ack: true, before: func() {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}, trips: 4, wantID: "ACME-0005", wantCreated: true, wantAllowed: false}, // pipeline, then EVAL of each script
		{dedup: "m6", before: func() {
			if err := rdb.Del(ctx, s.k.prefixes()).Err(); err != nil {
				t.Fatal(err)
			}
		}, trips: 1, wantID: "ACME-0006", wantCreated: true},
		{dedup: "m7", before: func() {
			if err := rdb.HSet(ctx, s.k.prefixes(), "ACME", `{"contract":"globex","prefix":"ACME"}`).Err(); err != nil {
				t.Fatal(err)
			}
		}, trips: 1, wantErr: "already used"},
	}
	for i, st := range steps {
		t.Run(fmt.Sprintf("%d-%s", i, st.dedup), func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			var a *AckLimit
			if st.ack {
				a = ack(st.dedup)
			}
			n0 := rt.n.Load()
			tk, created, allowed, err := s.CreateTicketAck(ctx, sampleTicket("acme", "ACME", st.dedup, received), a)
			if n := rt.n.Load() - n0; n != st.trips {
				t.Errorf("%d round trips, want %d", n, st.trips)
			}
			if st.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), st.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, st.wantErr)
				}
				return
			}
			if err != nil || tk.ID != st.wantID || created != st.wantCreated || allowed != st.wantAllowed {
				t.Fatalf("got %s created=%v allowed=%v err=%v, want %s created=%v allowed=%v", tk.ID, created, allowed, err, st.wantID, st.wantCreated, st.wantAllowed)
			}
		})
	}
	// The lost prefix record was written again (m6).
	if raw, err := rdb.HGet(ctx, s.k.prefixes(), "ACME").Result(); err != nil || !strings.Contains(raw, `"globex"`) {
		// m7 overwrote it on purpose; before that m6 must have rewritten it.
		t.Fatalf("prefix record %q %v", raw, err)
	}
}

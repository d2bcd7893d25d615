package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
)

// TestCreateTicketAcks: a batch of requests is one round trip (once the
// prefixes are claimed) and gives what the same requests one at a time
// give: numbers in order, a duplicate answered with the first ticket, the
// sender's sixth acknowledgement refused, IMAC places in order; an invalid
// request fails alone.
func TestCreateTicketAcks(t *testing.T) {
	ctx := context.Background()
	requests := func() []TicketAck {
		var reqs []TicketAck
		for i := range 8 {
			nt := sampleTicket("acme", "ACME", fmt.Sprintf("mid:m%d", i), received.Add(time.Duration(i)*time.Minute))
			if i == 3 {
				nt = sampleTicket("acme", "ACME", "mid:m1", received.Add(3*time.Minute)) // a duplicate of 1
			}
			if i%2 == 0 {
				nt.IMAC = &IMACRequest{Candidates: tuesdays(3), MonthlyQuota: 2, PerVisit: 5, Policy: PolicyNextMonth}
			}
			reqs = append(reqs, TicketAck{Ticket: nt, Ack: &AckLimit{Sender: "yossi@acme.co.il", MsgKey: nt.DedupKey,
				At: nt.Ticket.Opened, Limit: 5, Window: time.Hour}})
		}
		bad := sampleTicket("acme", "ACME", "", received) // no dedup key
		return slices.Insert(reqs, 5, TicketAck{Ticket: bad})
	}
	describe := func(r TicketAckResult) string {
		if r.Err != nil {
			return "error"
		}
		return fmt.Sprintf("%s created=%v allowed=%v imac=%s/%d deferred=%v", r.Ticket.ID, r.Created, r.Allowed,
			r.Ticket.IMACDate, r.Ticket.IMACQuotaUse, r.Ticket.IMACDeferred)
	}

	one, _ := newTestStore(t)
	var want []string
	for _, r := range requests() {
		var res TicketAckResult
		res.Ticket, res.Created, res.Allowed, res.Err = one.CreateTicketAck(ctx, r.Ticket, r.Ack)
		want = append(want, describe(res))
	}

	many, rdb := newTestStore(t)
	if _, _, err := many.CreateTicket(ctx, sampleTicket("acme", "ACME", "mid:warm-up", received.Add(-time.Hour))); err != nil {
		t.Fatal(err) // claims the prefix and loads the scripts
	}
	if err := rdb.Del(ctx, many.k.seq("acme"), many.k.dedup("acme"), many.k.tickets("acme"), many.k.imac("acme")).Err(); err != nil {
		t.Fatal(err)
	}
	trips := &tripCounter{}
	rdb.AddHook(trips)
	var got []string
	for _, r := range many.CreateTicketAcks(ctx, requests()) {
		got = append(got, describe(r))
	}
	if !slices.Equal(got, want) {
		t.Errorf("batch:\n%q\none at a time:\n%q", got, want)
	}
	if trips.n != 1 {
		t.Errorf("%d round trips, want 1", trips.n)
	}
	for _, w := range []string{"ACME-0001 created=true allowed=true", "ACME-0002 created=false allowed=true", "error", "allowed=false"} {
		if !slices.ContainsFunc(want, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("no result %q in %q: the requests do not cover it", w, want)
		}
	}
}

// TestCommitMessages: the commits are one transaction, each stored whole;
// an invalid one fails alone and stores nothing; a failed transaction
// fails them all.
func TestCommitMessages(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	if err := enqueueScript.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	ref := func(uid uint32) *SourceRef { return &SourceRef{Mailbox: "support", UIDValidity: 3, UID: uid} }
	bad := mail("ack:ACME-0003")
	bad.To = nil
	cs := []Commit{
		{TicketID: "ACME-0001", IDs: []string{"in-1@acme.co.il", "ack.1@nw.example"}, Entries: []OutboxEntry{mail("ack:ACME-0001"), mail("fwd:ACME-0001")}, Processed: ref(1)},
		{TicketID: "ACME-0002", IDs: []string{"in-2@acme.co.il"}, Entries: []OutboxEntry{mail("fwd:ACME-0002")}, Processed: ref(2)},
		{TicketID: "ACME-0003", IDs: []string{"in-3@acme.co.il"}, Entries: []OutboxEntry{bad}, Processed: ref(3)},
		{IDs: []string{"in-4@acme.co.il"}, Processed: ref(4)},                                     // ids without a ticket
		{TicketID: "ACME-0001", Entries: []OutboxEntry{mail("ack:ACME-0001")}, Processed: ref(5)}, // the same mail again
	}
	trips := &tripCounter{}
	rdb.AddHook(trips)
	added, errs := s.CommitMessages(ctx, cs, received)
	if trips.n != 1 {
		t.Errorf("%d round trips, want 1", trips.n)
	}
	wantAdded := [][]bool{{true, true}, {true}, nil, nil, {false}}
	for i := range cs {
		failed := i == 2 || i == 3
		if (errs[i] != nil) != failed || !slices.Equal(added[i], wantAdded[i]) {
			t.Errorf("commit %d: added %v, err %v; want %v, failed %v", i, added[i], errs[i], wantAdded[i], failed)
		}
		_, marked, err := s.Processed(ctx, *cs[i].Processed)
		if err != nil || marked == failed {
			t.Errorf("commit %d: marked %v (%v), want %v", i, marked, err, !failed)
		}
		for _, id := range cs[i].IDs {
			got, ok, err := s.TicketByMessageID(ctx, id)
			if err != nil || ok == failed || ok && got != cs[i].TicketID {
				t.Errorf("commit %d: %s indexed %q %v (%v)", i, id, got, ok, err)
			}
		}
	}
	if n, _, err := s.OutboxDepth(ctx); err != nil || n != 3 {
		t.Errorf("outbox depth %d %v, want 3", n, err)
	}

	// A command that fails inside the transaction (here the marker, on a
	// key of the wrong type) fails its commit; EXEC applied the others.
	broken := &SourceRef{Mailbox: "broken", UIDValidity: 1, UID: 1}
	if err := rdb.Set(ctx, s.k.processed(broken.Mailbox, broken.UIDValidity), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	mixed := []Commit{
		{TicketID: "ACME-0008", IDs: []string{"in-8@acme.co.il"}, Processed: ref(8)},
		{TicketID: "ACME-0009", IDs: []string{"in-9@acme.co.il"}, Processed: broken},
		{TicketID: "ACME-0010", IDs: []string{"in-10@acme.co.il"}, Processed: ref(10)},
	}
	_, errs = s.CommitMessages(ctx, mixed, received)
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Errorf("a command failing in the transaction: errors %v, want only the second", errs)
	}
	for _, uid := range []uint32{8, 10} {
		if _, marked, err := s.Processed(ctx, *ref(uid)); err != nil || !marked {
			t.Errorf("uid %d not marked (%v) after another commit's command failed", uid, err)
		}
	}

	// A transaction that fails (the connection is gone) fails every commit.
	rdb.AddHook(failExec{})
	more := []Commit{
		{TicketID: "ACME-0006", IDs: []string{"in-6@acme.co.il"}, Processed: ref(6)},
		{TicketID: "ACME-0007", IDs: []string{"in-7@acme.co.il"}, Processed: ref(7)},
	}
	_, errs = s.CommitMessages(ctx, more, received)
	for i, err := range errs {
		if err == nil {
			t.Errorf("commit %d of a failed transaction: no error", i)
		}
	}
}

// failExec fails every MULTI/EXEC transaction before it reaches Redis, as
// a lost connection would.
type failExec struct{}

func (failExec) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (failExec) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (failExec) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			err := errors.New("connection reset (injected)")
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

// TestCreateTicketReturnsWhatItStored: a created ticket is returned as the
// store holds it (the ticket sent plus the id and IMAC members the script
// adds, not decoded back from the whole JSON): the same JSON, whether it
// took an IMAC place, a billable one, one deferred to a later month, or
// none; and a duplicate returns the first, decoded.
func TestCreateTicketReturnsWhatItStored(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	imac := func(quota int, policy string) *IMACRequest {
		return &IMACRequest{Candidates: tuesdays(6), MonthlyQuota: quota, PerVisit: 0, Policy: policy}
	}
	for i, tc := range []struct {
		name string
		imac *IMACRequest
	}{
		{"no IMAC", nil},
		{"IMAC place", imac(5, PolicyNextMonth)},
		{"IMAC without a quota", imac(0, PolicyNextMonth)},
		{"billable", imac(1, PolicyBillable)},
		{"billable again", imac(1, PolicyBillable)},
		{"deferred", imac(1, PolicyNextMonth)},
		{"invalid UTF-8", nil},
	} {
		nt := sampleTicket("acme", "ACME", fmt.Sprintf("mid:stored-%d", i), received.Add(time.Duration(i)*time.Minute))
		nt.IMAC = tc.imac
		if tc.name == "invalid UTF-8" {
			// Stored with U+FFFD: the ticket returned must be the stored one.
			nt.Ticket.MessageID, nt.Ticket.Subject = "ab\xffcd@acme.co.il", "bad \xfe byte"
		}
		if tc.imac != nil {
			nt.Ticket.Category = "imac"
			nt.Ticket.IMACQuota = tc.imac.MonthlyQuota
		}
		got, created, err := s.CreateTicket(ctx, nt)
		if err != nil || !created {
			t.Fatalf("%s: created %v, %v", tc.name, created, err)
		}
		if strings.HasPrefix(tc.name, "billable") != got.Billable || (tc.name == "deferred") != got.IMACDeferred || (tc.imac != nil) != (got.IMACDate != "") {
			t.Errorf("%s: billable %v, deferred %v, IMAC date %q: the case does not test what it says", tc.name, got.Billable, got.IMACDeferred, got.IMACDate)
		}
		raw, err := rdb.HGet(ctx, s.k.tickets("acme"), got.ID).Result()
		if err != nil {
			t.Fatal(err)
		}
		var stored domain.Ticket
		if err := json.Unmarshal([]byte(raw), &stored); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(stored)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: returned\n%s\nstored\n%s", tc.name, a, b)
		}
		again, created, err := s.CreateTicket(ctx, nt)
		if c, _ := json.Marshal(again); err != nil || created || !bytes.Equal(c, b) {
			t.Errorf("%s: duplicate returned %s created=%v %v", tc.name, c, created, err)
		}
	}
}

// TestCreateTicketAcksAfterScriptFlush: after Redis lost its scripts (a
// restart, a failover, SCRIPT FLUSH), a batch's first call of each script
// on a key loads it (EVAL), so no later call in the pipeline meets
// NOSCRIPT and is run again after the others, out of order (review
// finding): still one round trip, numbers in order.
func TestCreateTicketAcksAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	if _, _, err := s.CreateTicket(ctx, sampleTicket("acme", "ACME", "mid:warm-up", received)); err != nil {
		t.Fatal(err) // claims the prefix
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var reqs []TicketAck
	for i := range 5 {
		nt := sampleTicket("acme", "ACME", fmt.Sprintf("mid:flushed-%d", i), received.Add(time.Duration(i)*time.Minute))
		reqs = append(reqs, TicketAck{Ticket: nt, Ack: &AckLimit{Sender: "yossi@acme.co.il", MsgKey: nt.DedupKey, At: nt.Ticket.Opened, Limit: 5, Window: time.Hour}})
	}
	trips := &tripCounter{}
	rdb.AddHook(trips)
	for i, r := range s.CreateTicketAcks(ctx, reqs) {
		if want := fmt.Sprintf("ACME-%04d", i+2); r.Err != nil || r.Ticket.ID != want || !r.Allowed {
			t.Errorf("request %d: %s allowed=%v %v, want %s", i, r.Ticket.ID, r.Allowed, r.Err, want)
		}
	}
	if trips.n != 1 {
		t.Errorf("%d round trips after SCRIPT FLUSH, want 1 (a NOSCRIPT was run again)", trips.n)
	}
}

// TestCommitNeverMarksWithoutMail: a queueing script that fails at run
// time inside the commit's transaction (here the outbox's sent key has the
// wrong type) leaves the message unmarked, alone or in a batch: EXEC
// applies the other commands, and the marker used to be one of them
// (found by review; pre-existing).
func TestCommitNeverMarksWithoutMail(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	if err := rdb.Set(ctx, s.k.outboxSent(), "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ref := func(uid uint32) *SourceRef { return &SourceRef{Mailbox: "support", UIDValidity: 5, UID: uid} }
	commit := func(uid uint32) Commit {
		id := fmt.Sprintf("ACME-%04d", uid)
		return Commit{TicketID: id, IDs: []string{fmt.Sprintf("in-%d@acme.co.il", uid)},
			Entries: []OutboxEntry{mail("ack:" + id), mail("fwd:" + id)}, Processed: ref(uid)}
	}
	if _, err := s.CommitMessage(ctx, commit(1), received); err == nil {
		t.Error("a commit whose mail could not be queued: no error")
	}
	_, errs := s.CommitMessages(ctx, []Commit{commit(2), commit(3)}, received)
	for i, err := range errs {
		if err == nil {
			t.Errorf("batch commit %d whose mail could not be queued: no error", i)
		}
	}
	for uid := uint32(1); uid <= 3; uid++ {
		if _, marked, err := s.Processed(ctx, *ref(uid)); err != nil || marked {
			t.Errorf("uid %d marked processed (%v) although its mail was not queued", uid, err)
		}
	}
	// A commit without mail still marks.
	if _, err := s.CommitMessage(ctx, Commit{TicketID: "ACME-0004", Processed: ref(4)}, received); err != nil {
		t.Fatal(err)
	}
	if _, marked, err := s.Processed(ctx, *ref(4)); err != nil || !marked {
		t.Errorf("a commit without mail: marked %v, %v", marked, err)
	}
}

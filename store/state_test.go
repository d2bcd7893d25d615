package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

func TestClaimTimers(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	tk := createWithTimers(t, s, "mid:timers")
	lease := time.Minute

	// Nothing is due before the response warning.
	got, err := s.ClaimTimers(ctx, "acme", received.Add(47*time.Minute), lease, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("early claim = %+v, %v", got, err)
	}
	// Both response timers are due after an hour; max 1 hands out the first.
	now := received.Add(61 * time.Minute)
	got, err = s.ClaimTimers(ctx, "acme", now, lease, 1)
	if err != nil || len(got) != 1 || got[0].Kind != ResponseWarn || got[0].Ticket != tk.ID ||
		!got[0].Due.Equal(received.Add(48*time.Minute)) || !got[0].LeasedUntil.Equal(now.Add(lease)) {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	warn := got[0]
	got, err = s.ClaimTimers(ctx, "acme", now, lease, 10)
	if err != nil || len(got) != 1 || got[0].Kind != ResponseBreach {
		t.Fatalf("second claim = %+v, %v", got, err)
	}
	breach := got[0]
	// Concurrent claimers while leased: nobody gets anything.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var extra []TimerEntry
	for range 5 {
		wg.Go(func() {
			g, err := s.ClaimTimers(ctx, "acme", now.Add(30*time.Second), lease, 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			extra = append(extra, g...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(extra) != 0 {
		t.Fatalf("claimed twice: %+v", extra)
	}
	if err := s.AckTimer(ctx, warn); err != nil {
		t.Fatal(err)
	}
	if err := s.AckTimer(ctx, warn); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("second ack: %v", err)
	}
	// The breach claim's holder died: after the lease it is handed out again.
	got, err = s.ClaimTimers(ctx, "acme", now.Add(2*lease), lease, 10)
	if err != nil || len(got) != 1 || got[0].Kind != ResponseBreach || !got[0].Due.Equal(breach.Due) {
		t.Fatalf("re-claim = %+v, %v", got, err)
	}
	// A first response meanwhile cancels the claimed timer: acking it fails.
	if _, _, err := s.UpdateTicket(ctx, tk.ID, Change{CancelTimers: []string{ResponseBreach}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AckTimer(ctx, got[0]); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("ack of cancelled timer: %v", err)
	}
	if k := timerKinds(t, s, "acme"); len(k) != 2 || k[0] != ResolutionWarn {
		t.Errorf("remaining timers = %v", k)
	}
	// A claimed timer that is rescheduled is pending again with its new due.
	now = received.Add(20 * time.Hour)
	got, err = s.ClaimTimers(ctx, "acme", now, lease, 10)
	if err != nil || len(got) != 1 || got[0].Kind != ResolutionWarn {
		t.Fatalf("claim resolution warn = %+v, %v", got, err)
	}
	newDue := now.Add(3 * time.Hour)
	if _, _, err := s.UpdateTicket(ctx, tk.ID, Change{Timers: []Timer{{Kind: ResolutionWarn, Due: newDue}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AckTimer(ctx, got[0]); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("ack of rescheduled timer: %v", err)
	}
	pend, err := s.PendingTimers(ctx, "acme")
	if err != nil || len(pend) != 2 || pend[0].Kind != ResolutionWarn || !pend[0].Due.Equal(newDue) || !pend[0].LeasedUntil.IsZero() || pend[1].Kind != ResolutionBreach {
		t.Errorf("pending after reschedule = %+v, %v", pend, err)
	}
	// PendingTimers shows claims with their lease.
	got, err = s.ClaimTimers(ctx, "acme", newDue, lease, 10)
	if err != nil || len(got) != 1 || got[0].Kind != ResolutionWarn || !got[0].Due.Equal(newDue) {
		t.Fatalf("claim rescheduled warn = %+v, %v", got, err)
	}
	pend, err = s.PendingTimers(ctx, "acme")
	if err != nil || len(pend) != 2 || pend[0].Kind != ResolutionWarn || !pend[0].LeasedUntil.Equal(newDue.Add(lease)) || !pend[1].LeasedUntil.IsZero() {
		t.Errorf("pending with a claim = %+v, %v", pend, err)
	}
}

func TestMessageIDIndex(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if err := s.IndexMessageIDs(ctx, "ACME-0001", "<a@acme.co.il>", " b@acme.co.il ", "", "<ack.ACME-0001@northwind-it.example>"); err != nil {
		t.Fatal(err)
	}
	// Idempotent, and a second ticket does not take an indexed id.
	if err := s.IndexMessageIDs(ctx, "ACME-0001", "a@acme.co.il"); err != nil {
		t.Fatal(err)
	}
	if err := s.IndexMessageIDs(ctx, "ACME-0002", "a@acme.co.il", "c@acme.co.il"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id     string
		ticket string
		ok     bool
	}{
		{"a@acme.co.il", "ACME-0001", true},
		{"<b@acme.co.il>", "ACME-0001", true},
		{"ack.ACME-0001@northwind-it.example", "ACME-0001", true},
		{"c@acme.co.il", "ACME-0002", true},
		{"A@acme.co.il", "", false},
		{"", "", false},
		{"<>", "", false},
	}
	for _, tc := range tests {
		got, ok, err := s.TicketByMessageID(ctx, tc.id)
		if err != nil || got != tc.ticket || ok != tc.ok {
			t.Errorf("TicketByMessageID(%q) = %q %v %v; want %q %v", tc.id, got, ok, err, tc.ticket, tc.ok)
		}
	}
	if err := s.IndexMessageIDs(ctx, "", "x@y"); err == nil {
		t.Error("empty ticket id accepted")
	}
}

func TestProcessed(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	ref := SourceRef{Mailbox: "INBOX", UIDValidity: 1700000000, UID: 42}
	if id, ok, err := s.Processed(ctx, ref); err != nil || ok || id != "" {
		t.Fatalf("before: %q %v %v", id, ok, err)
	}
	if err := s.MarkProcessed(ctx, ref, "ACME-0001"); err != nil {
		t.Fatal(err)
	}
	dropped := SourceRef{Mailbox: "INBOX", UIDValidity: 1700000000, UID: 43}
	if err := s.MarkProcessed(ctx, dropped, ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref SourceRef
		id  string
		ok  bool
	}{
		{ref, "ACME-0001", true},
		{dropped, "", true},
		{SourceRef{Mailbox: "INBOX", UIDValidity: 1700000001, UID: 42}, "", false},
		{SourceRef{Mailbox: "Support{2}", UIDValidity: 1700000000, UID: 42}, "", false},
		{SourceRef{Mailbox: "INBOX", UIDValidity: 1700000000, UID: 44}, "", false},
	}
	for _, tc := range tests {
		id, ok, err := s.Processed(ctx, tc.ref)
		if err != nil || id != tc.id || ok != tc.ok {
			t.Errorf("Processed(%v) = %q %v %v; want %q %v", tc.ref, id, ok, err, tc.id, tc.ok)
		}
	}
	// ProcessedMany agrees, a marker without a ticket ("") included.
	many, err := s.ProcessedMany(ctx, "INBOX", 1700000000, []uint32{44, 42, 43, 41})
	if err != nil || !slices.Equal(many, []bool{false, true, true, false}) {
		t.Errorf("ProcessedMany = %v, %v", many, err)
	}
	if many, err := s.ProcessedMany(ctx, "INBOX", 1700000001, []uint32{42}); err != nil || !slices.Equal(many, []bool{false}) {
		t.Errorf("ProcessedMany of another UIDVALIDITY = %v, %v", many, err)
	}
}

func TestCheckpointMonotone(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if v, l, err := s.Checkpoint(ctx, "INBOX"); err != nil || v != 0 || l != 0 {
		t.Fatalf("empty checkpoint = %d %d %v", v, l, err)
	}
	steps := []struct {
		validity, uid      uint32
		wantValidity, want uint32
	}{
		{7, 100, 7, 100},
		{7, 50, 7, 100}, // a late writer never moves it back
		{7, 100, 7, 100},
		{7, 150, 7, 150},
		{8, 5, 8, 5}, // a new UIDVALIDITY starts over
		{7, 500, 7, 500},
		{7, 4294967295, 7, 4294967295},
	}
	for _, st := range steps {
		if err := s.SetCheckpoint(ctx, "INBOX", st.validity, st.uid); err != nil {
			t.Fatal(err)
		}
		v, l, err := s.Checkpoint(ctx, "INBOX")
		if err != nil || v != st.wantValidity || l != st.want {
			t.Errorf("after set %d/%d: %d/%d %v; want %d/%d", st.validity, st.uid, v, l, err, st.wantValidity, st.want)
		}
	}
	if v, _, _ := s.Checkpoint(ctx, "Other"); v != 0 {
		t.Errorf("mailboxes share a checkpoint")
	}
}

func TestMailboxLease(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	must := func(ok bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !must(s.AcquireLease(ctx, "INBOX", "a", time.Minute)) {
		t.Fatal("a did not get a free lease")
	}
	if must(s.AcquireLease(ctx, "INBOX", "b", time.Minute)) {
		t.Fatal("b took a's lease")
	}
	if !must(s.AcquireLease(ctx, "INBOX", "a", time.Minute)) {
		t.Fatal("a could not renew")
	}
	if !must(s.AcquireLease(ctx, "Other", "b", time.Minute)) {
		t.Fatal("leases of different mailboxes collide")
	}
	if err := s.ReleaseLease(ctx, "INBOX", "b"); err != nil {
		t.Fatal(err)
	}
	if must(s.AcquireLease(ctx, "INBOX", "b", time.Minute)) {
		t.Fatal("b released a's lease")
	}
	if err := s.ReleaseLease(ctx, "INBOX", "a"); err != nil {
		t.Fatal(err)
	}
	if !must(s.AcquireLease(ctx, "INBOX", "b", 50*time.Millisecond)) {
		t.Fatal("b did not get the released lease")
	}
	time.Sleep(120 * time.Millisecond)
	if !must(s.AcquireLease(ctx, "INBOX", "a", time.Minute)) {
		t.Fatal("expired lease not taken over")
	}
}

func TestAllowAck(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := received
	steps := []struct {
		sender, msg string
		at          time.Duration
		want        bool
	}{
		{"yossi@acme.co.il", "m1", 0, true},
		{"Yossi@ACME.co.il", "m2", time.Minute, true},
		{"yossi@acme.co.il", "m3", 2 * time.Minute, false},
		{"yossi@acme.co.il", "m1", 3 * time.Minute, true}, // the same message asked again
		{"dana@acme.co.il", "m4", 3 * time.Minute, true},
		{"yossi@acme.co.il", "m3", 60*time.Minute + 30*time.Second, true}, // m1 left the window
		{"yossi@acme.co.il", "m5", 60*time.Minute + 30*time.Second, false},
		{"yossi@acme.co.il", "m5", 61 * time.Minute, true}, // so did m2 (the window is half-open)
	}
	for i, st := range steps {
		ok, err := s.AllowAck(ctx, st.sender, st.msg, now.Add(st.at), 2, time.Hour)
		if err != nil || ok != st.want {
			t.Errorf("step %d (%s %s): %v %v; want %v", i, st.sender, st.msg, ok, err, st.want)
		}
	}
}

func TestKeysShareTags(t *testing.T) {
	k := keys{p: escapeTag("tg{x}:")}
	tag := func(key string) string {
		// Redis Cluster hashes the part between the first '{' and the next '}'.
		for i := 0; i < len(key); i++ {
			if key[i] == '{' {
				for j := i + 1; j < len(key); j++ {
					if key[j] == '}' {
						return key[i+1 : j]
					}
				}
				return key
			}
		}
		return key
	}
	groups := map[string][]string{
		"c:ac%7Bme%7D": {k.seq("ac{me}"), k.tickets("ac{me}"), k.events("ac{me}"), k.dedup("ac{me}"), k.timers("ac{me}"), k.timerLeases("ac{me}"), k.timerDues("ac{me}"), k.imac("ac{me}")},
		"c:_":          {k.seq(""), k.tickets(""), k.imac("")},
		"mb:IN%25BOX":  {k.checkpoint("IN%BOX"), k.lease("IN%BOX"), k.processed("IN%BOX", 1)},
		"outbox":       {k.outboxPending(), k.outboxLeased(), k.outboxQueued(), k.outboxMsg(), k.outboxRaw(), k.outboxAttempts(), k.outboxErrors(), k.outboxSent()},
		"meta":         {k.prefixes()},
	}
	for want, ks := range groups {
		for _, key := range ks {
			if got := tag(key); got != want {
				t.Errorf("key %s hashes %q, want %q", key, got, want)
			}
		}
	}
	if a, b := tag(k.messageID("a@b")), tag(k.messageID("a@c")); a == b || len(a) != 42 {
		t.Errorf("message id tags %q %q", a, b)
	}
	if got := fmt.Sprint(k.seq("acme")); got != "tg%7Bx%7D:{c:acme}:seq" {
		t.Errorf("seq key = %s", got)
	}
}

func TestFormatDate(t *testing.T) {
	tests := map[string]struct {
		y    int
		m    time.Month
		d    int
		want string
	}{
		"padded": {2026, time.December, 8, "2026-12-08"},
		"early":  {987, time.January, 1, "0987-01-01"},
	}
	for name, tc := range tests {
		if got := FormatDate(sdate(tc.y, tc.m, tc.d)); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
}

func TestEventsDecodeError(t *testing.T) {
	evs, err := decodeEvents("{\"kind\":\"opened\",\"at\":\"2026-11-30T09:30:00+02:00\"}\n{broken\n")
	if err == nil || len(evs) != 1 || evs[0].Kind != domain.EventOpened {
		t.Errorf("decodeEvents = %+v, %v", evs, err)
	}
}

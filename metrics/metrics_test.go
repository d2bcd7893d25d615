package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeSource is an IMAP source whose stats the test sets.
type fakeSource struct {
	mu sync.Mutex
	st ingest.SourceStats
}

func (f *fakeSource) Stats() ingest.SourceStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeSource) set(st ingest.SourceStats) {
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
}

// fakeState is the stored state: outbox and timers, with call counts and an
// injectable failure.
type fakeState struct {
	mu      sync.Mutex
	depth   int64
	oldest  time.Time
	timers  map[string]int64
	err     error
	reads   atomic.Int64 // OutboxDepth calls
	counted []string     // TimerCount contracts, in call order
}

func (f *fakeState) OutboxDepth(context.Context) (int64, time.Time, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.depth, f.oldest, f.err
}

func (f *fakeState) TimerCount(_ context.Context, contract string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counted = append(f.counted, contract)
	return f.timers[contract], f.err
}

// gather renders the ticketgw_ families of m in the text format, sorted by
// name (as the registry gathers them).
func gather(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), metrics.Namespace+"_") {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatalf("render %s: %v", mf.GetName(), err)
		}
	}
	return b.String()
}

// sample returns the value of the series name{labels} in the text
// exposition text, and whether it is there. labels is the exact label
// text as rendered, e.g. `kind="ack"` ("" for none).
func sample(text, name, labels string) (string, bool) {
	series := name
	if labels != "" {
		series += "{" + labels + "}"
	}
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v, true
		}
	}
	return "", false
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestEvents records one of every event and compares the exposition with
// the golden file: names, help texts, label names and values.
func TestEvents(t *testing.T) {
	m := metrics.New()
	m.Preset(metrics.Known{
		Mailboxes: []string{"support@northwind-it.example"}, Outcomes: []string{"ticket", "automatic"},
		Contracts: []string{"acme", ""}, Categories: []string{"fault"}, MailKinds: []string{"ack"},
		LoopReasons: []string{"bounce"}, Accounts: []string{"support@northwind-it.example"},
	})
	arrived := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	m.MessageIngested("support@northwind-it.example", "ticket")
	m.MessageIngested("support@northwind-it.example", "ticket")
	m.MessageIngested("support@northwind-it.example", "automatic")
	m.MessageIngested("brand@northwind-it.example", "")
	m.TicketOpened("acme", "fault")
	m.TicketOpened("", "request")
	m.LoopSuppressed("auto-reply")
	m.MailSent("ack", arrived, arrived.Add(300*time.Millisecond))
	m.MailSent("ack", arrived, arrived.Add(4*time.Second))
	m.MailSent("forward", time.Time{}, arrived)
	m.MailFailed("forward", true)
	m.MailFailed("relay", false)
	m.MailDropped("relay")
	m.SLAWarned("acme")
	m.SLABreached("")
	m.TokenRefreshed("support@northwind-it.example", arrived.Add(time.Hour))
	m.TokenRefreshFailed("support@northwind-it.example", errors.New("invalid_grant"))
	m.ConfigLoaded(true, arrived)
	golden(t, "events.golden", gather(t, m))
}

func TestMailLatency(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	for _, tt := range []struct {
		name          string
		arrived, sent time.Time
		count, sum    string // "" count: no histogram series
		bucket1s      string // cumulative count at le="1"
	}{
		{"unknown arrival is not observed", time.Time{}, at, "", "", ""},
		{"fast ack", at, at.Add(250 * time.Millisecond), "1", "0.25", "1"},
		{"slow ack", at, at.Add(90 * time.Second), "1", "90", "0"},
		{"clock skew is clamped at zero", at, at.Add(-time.Second), "1", "0", "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			m.MailSent("ack", tt.arrived, tt.sent)
			text := gather(t, m)
			if v, ok := sample(text, "ticketgw_mail_sent_total", `kind="ack"`); !ok || v != "1" {
				t.Errorf("mail_sent_total{ack} = %q, %v; want 1", v, ok)
			}
			count, ok := sample(text, "ticketgw_mail_latency_seconds_count", `kind="ack"`)
			if tt.count == "" {
				if ok {
					t.Errorf("latency observed without an arrival:\n%s", text)
				}
				return
			}
			sum, _ := sample(text, "ticketgw_mail_latency_seconds_sum", `kind="ack"`)
			b, _ := sample(text, "ticketgw_mail_latency_seconds_bucket", `kind="ack",le="1"`)
			if count != tt.count || sum != tt.sum || b != tt.bucket1s {
				t.Errorf("count %q sum %q le=1 %q; want %q %q %q", count, sum, b, tt.count, tt.sum, tt.bucket1s)
			}
		})
	}
}

func TestConfigLoaded(t *testing.T) {
	m := metrics.New()
	first := time.Unix(1_800_000_000, 0)
	m.ConfigLoaded(true, first)
	m.ConfigLoaded(false, first.Add(time.Hour))
	text := gather(t, m)
	if v, _ := sample(text, "ticketgw_config_last_reload_success", ""); v != "0" {
		t.Errorf("success after a failed reload = %q, want 0", v)
	}
	if v, _ := sample(text, "ticketgw_config_last_reload_success_timestamp_seconds", ""); v != "1.8e+09" {
		t.Errorf("timestamp = %q, want the last success 1.8e+09", v)
	}
	m.ConfigLoaded(true, first.Add(2*time.Hour))
	text = gather(t, m)
	if v, _ := sample(text, "ticketgw_config_last_reload_success", ""); v != "1" {
		t.Errorf("success = %q, want 1", v)
	}
	if v, _ := sample(text, "ticketgw_config_last_reload_success_timestamp_seconds", ""); v != "1.8000072e+09" {
		t.Errorf("timestamp = %q, want 1.8000072e+09", v)
	}
}

func TestIMAPCollector(t *testing.T) {
	for _, tt := range []struct {
		name    string
		st      ingest.SourceStats
		reading bool
		want    map[string]string // series -> value
	}{
		{"connected with IDLE", ingest.SourceStats{Connected: true, Mode: "idle", Reconnects: 2, Notifications: 7, IdleCycles: 3, Handled: 5, PendingRetry: 1}, true,
			map[string]string{`ticketgw_imap_connected{mailbox="a@x"}`: "1", `ticketgw_imap_mode{mailbox="a@x",mode="idle"}`: "1",
				`ticketgw_imap_mode{mailbox="a@x",mode="poll"}`: "0", `ticketgw_imap_reconnects_total{mailbox="a@x"}`: "2",
				`ticketgw_imap_notifications_total{mailbox="a@x"}`: "7", `ticketgw_imap_idle_cycles_total{mailbox="a@x"}`: "3",
				`ticketgw_imap_messages_handled_total{mailbox="a@x"}`: "5", `ticketgw_imap_pending_retries{mailbox="a@x"}`: "1",
				`ticketgw_mailbox_lease_held{mailbox="a@x"}`: "1"}},
		{"polling", ingest.SourceStats{Connected: true, Mode: "poll", Polls: 9}, true,
			map[string]string{`ticketgw_imap_mode{mailbox="a@x",mode="idle"}`: "0", `ticketgw_imap_mode{mailbox="a@x",mode="poll"}`: "1",
				`ticketgw_imap_polls_total{mailbox="a@x"}`: "9"}},
		{"disconnected keeps its last mode out", ingest.SourceStats{Connected: false, Mode: "idle", HandlerErrors: 4, MoveErrors: 1, UIDValidityChanges: 1}, true,
			map[string]string{`ticketgw_imap_connected{mailbox="a@x"}`: "0", `ticketgw_imap_mode{mailbox="a@x",mode="idle"}`: "0",
				`ticketgw_imap_handler_errors_total{mailbox="a@x"}`: "4", `ticketgw_imap_move_errors_total{mailbox="a@x"}`: "1",
				`ticketgw_imap_uidvalidity_changes_total{mailbox="a@x"}`: "1"}},
		{"standby", ingest.SourceStats{}, false, map[string]string{`ticketgw_mailbox_lease_held{mailbox="a@x"}`: "0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{st: tt.st}
			m := metrics.New()
			if err := m.Register(metrics.NewIMAPCollector([]metrics.Mailbox{{Name: "a@x", Source: src, Reading: func() bool { return tt.reading }}})); err != nil {
				t.Fatal(err)
			}
			text := gather(t, m)
			for series, want := range tt.want {
				name, labels, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
				if got, ok := sample(text, name, labels); got != want {
					t.Errorf("%s = %q (present %v), want %s", series, got, ok, want)
				}
			}
		})
	}
}

// TestIMAPCollectorReadsAtScrape checks that the values are the source's
// at the time of the scrape.
func TestIMAPCollectorReadsAtScrape(t *testing.T) {
	src := &fakeSource{}
	m := metrics.New()
	if err := m.Register(metrics.NewIMAPCollector([]metrics.Mailbox{{Name: "a@x", Source: src}})); err != nil {
		t.Fatal(err)
	}
	if v, _ := sample(gather(t, m), "ticketgw_imap_connected", `mailbox="a@x"`); v != "0" {
		t.Fatalf("connected = %q, want 0", v)
	}
	src.set(ingest.SourceStats{Connected: true, Mode: "idle", Reconnects: 1})
	text := gather(t, m)
	if v, _ := sample(text, "ticketgw_imap_connected", `mailbox="a@x"`); v != "1" {
		t.Errorf("connected = %q, want 1", v)
	}
	if v, _ := sample(text, "ticketgw_imap_reconnects_total", `mailbox="a@x"`); v != "1" {
		t.Errorf("reconnects = %q, want 1", v)
	}
}

// TestLint runs promlint (the Prometheus naming conventions) over every
// family of ours.
func TestLint(t *testing.T) {
	m := metrics.New()
	m.Preset(metrics.Known{Mailboxes: []string{"a@x"}, Outcomes: []string{"ticket"}, Contracts: []string{"acme"},
		Categories: []string{"fault"}, MailKinds: []string{"ack"}, LoopReasons: []string{"list"}, Accounts: []string{"a@x"}})
	m.MailSent("ack", time.Unix(1, 0), time.Unix(2, 0))
	m.TokenRefreshed("a@x", time.Unix(3, 0))
	m.ConfigLoaded(true, time.Unix(4, 0))
	if err := m.Register(metrics.NewIMAPCollector([]metrics.Mailbox{{Name: "a@x", Source: &fakeSource{}}})); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(metrics.NewStateCollector(&fakeState{}, metrics.StateOptions{Contracts: []string{"acme"}})); err != nil {
		t.Fatal(err)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ours []*dto.MetricFamily
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), metrics.Namespace+"_") {
			ours = append(ours, mf)
		}
	}
	if len(ours) < 25 {
		t.Errorf("only %d families of ours gathered", len(ours))
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestStateCollector(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	st := &fakeState{depth: 3, oldest: now.Add(-90 * time.Second), timers: map[string]int64{"acme": 4, "": 2}}
	m := metrics.New()
	err := m.Register(metrics.NewStateCollector(st, metrics.StateOptions{
		Contracts: []string{"acme", "globex", "", metrics.NoContract}, // NoContract repeats "": one series
		Now:       func() time.Time { return now },
		TTL:       time.Hour,
	}))
	if err != nil {
		t.Fatal(err)
	}
	text := gather(t, m)
	for _, tt := range []struct{ name, labels, want string }{
		{"ticketgw_outbox_depth", "", "3"},
		{"ticketgw_outbox_oldest_age_seconds", "", "90"},
		{"ticketgw_sla_timers_pending", `contract="acme"`, "4"},
		{"ticketgw_sla_timers_pending", `contract="globex"`, "0"},
		{"ticketgw_sla_timers_pending", `contract="none"`, "2"},
	} {
		if got, ok := sample(text, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s{%s} = %q (present %v), want %s", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	if got := strings.Join(st.counted, ","); got != "acme,globex," {
		t.Errorf("timer counts read for %q, want acme,globex,(none)", got)
	}
	// A second scrape within the TTL reuses the reading.
	st.mu.Lock()
	st.depth = 10
	st.mu.Unlock()
	if v, _ := sample(gather(t, m), "ticketgw_outbox_depth", ""); v != "3" || st.reads.Load() != 1 {
		t.Errorf("within the TTL: depth %q after %d reads, want the cached 3 after 1", v, st.reads.Load())
	}
}

// TestStateCollectorCache checks the TTL and the failure handling on the
// fake clock of a synctest bubble.
func TestStateCollectorCache(t *testing.T) {
	synctestRun(t, func(t *testing.T) {
		st := &fakeState{depth: 1}
		m := metrics.New()
		if err := m.Register(metrics.NewStateCollector(st, metrics.StateOptions{TTL: 5 * time.Second})); err != nil {
			t.Fatal(err)
		}
		depth := func() (string, bool) { return sample(gather(t, m), "ticketgw_outbox_depth", "") }
		if v, _ := depth(); v != "1" {
			t.Fatalf("depth %q, want 1", v)
		}
		st.mu.Lock()
		st.depth, st.err = 2, errors.New("redis down")
		st.mu.Unlock()
		time.Sleep(4 * time.Second)
		if v, _ := depth(); v != "1" {
			t.Errorf("after 4s: depth %q, want the cached 1", v)
		}
		time.Sleep(2 * time.Second)
		if v, ok := depth(); ok {
			t.Errorf("reading failed, yet depth %q exported", v)
		}
		st.mu.Lock()
		st.err = nil
		st.mu.Unlock()
		time.Sleep(6 * time.Second)
		if v, _ := depth(); v != "2" {
			t.Errorf("after recovery: depth %q, want 2", v)
		}
		if n := st.reads.Load(); n != 3 {
			t.Errorf("%d reads, want 3 (one per TTL)", n)
		}
	})
}

// constCollector exports one gauge with a fixed value.
type constCollector struct {
	desc *prometheus.Desc
	v    float64
}

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, c.v)
}

// Attach swaps the collectors of the gateway a reload replaced for the new
// one's, on the same registry and counters.
func TestAttachReplacesTheCollectors(t *testing.T) {
	m := metrics.New()
	m.TicketOpened("acme", "fault")
	desc := prometheus.NewDesc("ticketgw_test_value", "test", nil, nil)
	value := func() (float64, int) {
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "ticketgw_test_value" {
				return mf.GetMetric()[0].GetGauge().GetValue(), len(mf.GetMetric())
			}
		}
		return 0, 0
	}
	if err := m.Attach(constCollector{desc, 1}); err != nil {
		t.Fatal(err)
	}
	if v, n := value(); v != 1 || n != 1 {
		t.Fatalf("after the first Attach: %v (%d series)", v, n)
	}
	// The same descriptor again: Register alone would refuse it.
	if err := m.Attach(constCollector{desc, 2}); err != nil {
		t.Fatal(err)
	}
	if v, n := value(); v != 2 || n != 1 {
		t.Fatalf("after the second Attach: %v (%d series), want only the new collector's 2", v, n)
	}
	mfs, _ := m.Registry().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "ticketgw_tickets_opened_total" && mf.GetMetric()[0].GetCounter().GetValue() != 1 {
			t.Fatal("a counter changed with Attach")
		}
	}
}

// A reload that removes an OAuth account drops its token expiry: frozen,
// it would fire expiry alerts for an account no longer used.
func TestPresetDropsTheExpiryOfRemovedAccounts(t *testing.T) {
	m := metrics.New()
	exp := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m.Preset(metrics.Known{Accounts: []string{"old@x", "kept@x"}})
	m.TokenRefreshed("old@x", exp)
	m.TokenRefreshed("kept@x", exp)
	m.TokenRefreshFailed("old@x", errors.New("x"))
	m.Preset(metrics.Known{Accounts: []string{"kept@x"}}) // the reloaded configuration
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var expiry []string
	failures := 0.0
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				switch {
				case mf.GetName() == "ticketgw_token_expiry_timestamp_seconds" && lp.GetName() == "account":
					expiry = append(expiry, lp.GetValue())
				case mf.GetName() == "ticketgw_token_refresh_failures_total" && lp.GetValue() == "old@x":
					failures = s.GetCounter().GetValue()
				}
			}
		}
	}
	if len(expiry) != 1 || expiry[0] != "kept@x" {
		t.Errorf("expiry series for %v, want only kept@x", expiry)
	}
	if failures != 1 {
		t.Errorf("the removed account's failure counter = %v, want it kept (1)", failures)
	}
}

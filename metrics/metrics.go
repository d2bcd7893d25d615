// Package metrics is the gateway's observability: Prometheus metrics on
// /metrics (prefix ticketgw_), the liveness endpoint /healthz and the
// readiness endpoint /readyz.
//
// A Metrics holds its own registry (no global state, so tests and
// reloads run side by side): counters and histograms the gateway updates as
// things happen (messages ingested, tickets opened, mail sent, timers fired),
// and collectors that read state when scraped (IMAP sessions, outbox depth,
// pending SLA timers). Label values are contract ids, mailbox addresses,
// categories and fixed words from the code: never a secret, never a
// customer's address.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// Namespace prefixes every metric name.
const Namespace = "ticketgw"

// NoContract is the contract label of tickets and timers without a contract
// (unknown senders under `unknown_senders: ticket`).
const NoContract = "none"

// LatencyBuckets are the buckets (seconds) of the arrival-to-send
// histogram: from tens of milliseconds (an acknowledgement within a second
// is the promise) to half an hour (an SMTP outage).
var LatencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800}

// Metrics are the gateway's metrics. The zero value is not usable; call New.
// All methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	ingested      *prometheus.CounterVec
	ticketsOpened *prometheus.CounterVec
	mailSent      *prometheus.CounterVec
	mailFailed    *prometheus.CounterVec
	mailDropped   *prometheus.CounterVec
	mailLatency   *prometheus.HistogramVec
	loops         *prometheus.CounterVec
	slaWarnings   *prometheus.CounterVec
	slaBreaches   *prometheus.CounterVec
	tokenExpiry   *prometheus.GaugeVec
	tokenFailures *prometheus.CounterVec
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge

	mu       sync.Mutex
	attached []prometheus.Collector // the running gateway's (Attach)
}

// New returns Metrics on a fresh registry that also carries the standard Go
// runtime and process collectors.
func New() *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ingested: counter("messages_ingested_total",
			"Messages handled by the pipeline, by mailbox and outcome (ticket, duplicate, follow-up, staff-reply, automatic, ...).",
			"mailbox", "outcome"),
		ticketsOpened: counter("tickets_opened_total", "Tickets opened, by contract and category.", "contract", "category"),
		mailSent:      counter("mail_sent_total", "Outgoing mail accepted by the SMTP relay, by kind (ack, forward, relay, ...).", "kind"),
		mailFailed: counter("mail_failed_total",
			"Failed attempts to send outgoing mail, by kind and class (temporary: retried; permanent: retried up to the limit).",
			"kind", "class"),
		mailDropped: counter("mail_dropped_total", "Outgoing mail given up after repeated permanent failures, by kind.", "kind"),
		mailLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "mail_latency_seconds",
			Help:    "Time from a message's arrival at the gateway to the relay accepting the mail it caused, by kind (kind=\"ack\": arrival to acknowledgement).",
			Buckets: LatencyBuckets,
		}, []string{"kind"}),
		loops: counter("loops_suppressed_total",
			"Automatic answers not sent to prevent mail loops, by reason (auto-reply, bounce, list, loop, self, noreply, rate-limit).",
			"reason"),
		slaWarnings: counter("sla_warnings_total", "SLA warning notices queued, by contract.", "contract"),
		slaBreaches: counter("sla_breaches_total", "SLA breaches recorded (and notices queued), by contract.", "contract"),
		tokenExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "token_expiry_timestamp_seconds",
			Help: "When the current OAuth access token of an account expires (Unix time).",
		}, []string{"account"}),
		tokenFailures: counter("token_refresh_failures_total", "Failed OAuth token refreshes, by account.", "account"),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "config_last_reload_success",
			Help: "Whether the last configuration load or reload succeeded (1) or failed (0; the running configuration was kept).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (Unix time).",
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.ingested, m.ticketsOpened, m.mailSent, m.mailFailed, m.mailDropped, m.mailLatency, m.loops,
		m.slaWarnings, m.slaBreaches, m.tokenExpiry, m.tokenFailures, m.reloadOK, m.reloadTime,
	)
	return m
}

// Registry returns the registry the metrics live on (for tests and for
// registering further collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Register adds a collector, such as NewIMAPCollector or
// NewStateCollector, to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Attach replaces the collectors the previous Attach added with cs. A
// configuration reload builds a new gateway, whose IMAP sessions and store
// the collectors read, on the same Metrics: its counters and histograms go
// on from where they were instead of starting again at zero.
func (m *Metrics) Attach(cs ...prometheus.Collector) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.attached {
		m.reg.Unregister(c)
	}
	m.attached = nil
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
		m.attached = append(m.attached, c)
	}
	return nil
}

// Known lists label values that exist from the start, so that their series
// are exported as 0 before the first event (rate() and alerts then work
// from the first scrape). Values not listed are still counted when they
// occur.
type Known struct {
	Mailboxes   []string
	Outcomes    []string
	Contracts   []string // "" stands for NoContract
	Categories  []string
	MailKinds   []string
	LoopReasons []string
	Accounts    []string // OAuth accounts (refresh failures)
}

// Preset creates the series of k at 0, and drops the token expiry of
// accounts k does not list. Call it when a gateway with configuration k
// starts running.
func (m *Metrics) Preset(k Known) {
	for _, mb := range k.Mailboxes {
		for _, o := range k.Outcomes {
			m.ingested.WithLabelValues(mb, o)
		}
	}
	for _, c := range k.Contracts {
		c = contractLabel(c)
		for _, cat := range k.Categories {
			m.ticketsOpened.WithLabelValues(c, cat)
		}
		m.slaWarnings.WithLabelValues(c)
		m.slaBreaches.WithLabelValues(c)
	}
	for _, kind := range k.MailKinds {
		m.mailSent.WithLabelValues(kind)
		m.mailFailed.WithLabelValues(kind, "temporary")
		m.mailFailed.WithLabelValues(kind, "permanent")
		m.mailDropped.WithLabelValues(kind)
	}
	for _, r := range k.LoopReasons {
		m.loops.WithLabelValues(r)
	}
	for _, a := range k.Accounts {
		m.tokenFailures.WithLabelValues(a)
	}
	// An account a reload removed keeps no expiry series: its frozen
	// timestamp would fire token-expiry alerts for nothing.
	keep := make(map[string]bool, len(k.Accounts))
	for _, a := range k.Accounts {
		keep[a] = true
	}
	ch := make(chan prometheus.Metric, 16)
	go func() { m.tokenExpiry.Collect(ch); close(ch) }()
	var drop []string
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil {
			continue
		}
		for _, lp := range d.GetLabel() {
			if lp.GetName() == "account" && !keep[lp.GetValue()] {
				drop = append(drop, lp.GetValue())
			}
		}
	}
	for _, a := range drop {
		m.tokenExpiry.DeleteLabelValues(a)
	}
}

func contractLabel(c string) string {
	if c == "" {
		return NoContract
	}
	return c
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// MessageIngested counts one message handled from mailbox with the
// pipeline's outcome (its Outcome.Action).
func (m *Metrics) MessageIngested(mailbox, outcome string) {
	m.ingested.WithLabelValues(mailbox, orUnknown(outcome)).Inc()
}

// TicketOpened counts a new ticket ("" contract: NoContract).
func (m *Metrics) TicketOpened(contract, category string) {
	m.ticketsOpened.WithLabelValues(contractLabel(contract), orUnknown(category)).Inc()
}

// LoopSuppressed counts an automatic answer not sent to prevent a loop.
func (m *Metrics) LoopSuppressed(reason string) {
	m.loops.WithLabelValues(orUnknown(reason)).Inc()
}

// MailSent counts mail of kind accepted by the relay at sent. When arrived
// (the arrival of the message that caused it) is known, the time between
// is observed in the latency histogram (clamped at 0 against clock skew
// between instances).
func (m *Metrics) MailSent(kind string, arrived, sent time.Time) {
	kind = orUnknown(kind)
	// The histogram first: a scrape in between sees it at least as far as
	// the counter.
	if !arrived.IsZero() {
		m.mailLatency.WithLabelValues(kind).Observe(max(sent.Sub(arrived), 0).Seconds())
	}
	m.mailSent.WithLabelValues(kind).Inc()
}

// MailFailed counts a failed send attempt of kind.
func (m *Metrics) MailFailed(kind string, temporary bool) {
	class := "permanent"
	if temporary {
		class = "temporary"
	}
	m.mailFailed.WithLabelValues(orUnknown(kind), class).Inc()
}

// MailDropped counts mail given up for good.
func (m *Metrics) MailDropped(kind string) {
	m.mailDropped.WithLabelValues(orUnknown(kind)).Inc()
}

// SLAWarned counts a warning notice queued for a ticket of contract.
func (m *Metrics) SLAWarned(contract string) {
	m.slaWarnings.WithLabelValues(contractLabel(contract)).Inc()
}

// SLABreached counts a breach recorded for a ticket of contract.
func (m *Metrics) SLABreached(contract string) {
	m.slaBreaches.WithLabelValues(contractLabel(contract)).Inc()
}

// TokenRefreshed records when account's new OAuth access token expires.
// With TokenRefreshFailed it is the token client's observer (oauth.Observer);
// account is the credential's name (the mailbox address, or the SMTP
// username).
func (m *Metrics) TokenRefreshed(account string, expiry time.Time) {
	m.tokenExpiry.WithLabelValues(account).Set(unixSeconds(expiry))
}

// TokenRefreshFailed counts a failed token refresh of account. The error is
// logged by the token client, not exported: its text would make unbounded
// label values.
func (m *Metrics) TokenRefreshFailed(account string, _ error) {
	m.tokenFailures.WithLabelValues(account).Inc()
}

// ConfigLoaded records a configuration load or reload at at: on success the
// success gauge is 1 and the timestamp moves; on failure the gauge is 0 and
// the timestamp stays at the last success.
func (m *Metrics) ConfigLoaded(ok bool, at time.Time) {
	if !ok {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.Set(unixSeconds(at))
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

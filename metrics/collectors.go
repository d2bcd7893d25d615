package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/northwind-it/ticketgw/ingest"
)

// StatsReader is an IMAP source's counters (implemented by *ingest.Source).
type StatsReader interface {
	Stats() ingest.SourceStats
}

// Mailbox is one IMAP mailbox whose source is watched.
type Mailbox struct {
	Name   string // the mailbox address: the label value
	Source StatsReader
	// Reading, when set, says whether this instance reads the mailbox now
	// (holds its lease). A standby instance neither connects nor needs to.
	// Nil means always.
	Reading func() bool
}

func (mb Mailbox) reading() bool { return mb.Reading == nil || mb.Reading() }

// imapCollector reads the sources' counters at scrape time.
type imapCollector struct {
	mailboxes []Mailbox

	connected, mode, leaseHeld, pendingRetry               *prometheus.Desc
	reconnects, notifications, sessions, idleCycles, polls *prometheus.Desc
	handled, handlerErrors, moveErrors, uidValidityChanges *prometheus.Desc
}

// NewIMAPCollector exports the IMAP sources' state and counters, read when
// scraped: connection state, IDLE or polling, reconnects, server
// notifications, handled messages and errors.
func NewIMAPCollector(mailboxes []Mailbox) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "imap", name), help, append([]string{"mailbox"}, labels...), nil)
	}
	return &imapCollector{
		mailboxes:    mailboxes,
		connected:    d("connected", "Whether a session has the mailbox's folder selected (1) or not (0)."),
		mode:         d("mode", "The session's way of waiting for new mail: 1 for the current mode (idle or poll), 0 for the other; both 0 while disconnected.", "mode"),
		leaseHeld:    prometheus.NewDesc(prometheus.BuildFQName(Namespace, "mailbox", "lease_held"), "Whether this instance holds the mailbox's lease and reads it (1) or stands by (0).", []string{"mailbox"}, nil),
		pendingRetry: d("pending_retries", "Messages waiting for another attempt after a failure."),
		reconnects:   d("reconnects_total", "Sessions that ended and were retried."),
		notifications: d("notifications_total",
			"New-mail notifications (EXISTS) received from the server."),
		sessions:           d("sessions_total", "Sessions that reached the selected folder."),
		idleCycles:         d("idle_cycles_total", "IDLE commands issued."),
		polls:              d("polls_total", "Polling passes (servers without IDLE)."),
		handled:            d("messages_handled_total", "Messages handled and moved to the processed folder."),
		handlerErrors:      d("handler_errors_total", "Messages whose handling failed (retried later)."),
		moveErrors:         d("move_errors_total", "Handled messages that could not be moved to the processed folder."),
		uidValidityChanges: d("uidvalidity_changes_total", "UIDVALIDITY changes seen (the folder is rescanned)."),
	}
}

func (c *imapCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.mode, c.leaseHeld, c.pendingRetry, c.reconnects, c.notifications,
		c.sessions, c.idleCycles, c.polls, c.handled, c.handlerErrors, c.moveErrors, c.uidValidityChanges} {
		ch <- d
	}
}

func (c *imapCollector) Collect(ch chan<- prometheus.Metric) {
	for _, mb := range c.mailboxes {
		st := mb.Source.Stats()
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{mb.Name}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), mb.Name)
		}
		gauge(c.connected, b2f(st.Connected))
		gauge(c.mode, b2f(st.Connected && st.Mode == "idle"), "idle")
		gauge(c.mode, b2f(st.Connected && st.Mode == "poll"), "poll")
		gauge(c.leaseHeld, b2f(mb.reading()))
		gauge(c.pendingRetry, float64(st.PendingRetry))
		counter(c.reconnects, st.Reconnects)
		counter(c.notifications, st.Notifications)
		counter(c.sessions, st.Sessions)
		counter(c.idleCycles, st.IdleCycles)
		counter(c.polls, st.Polls)
		counter(c.handled, st.Handled)
		counter(c.handlerErrors, st.HandlerErrors)
		counter(c.moveErrors, st.MoveErrors)
		counter(c.uidValidityChanges, st.UIDValidityChanges)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// StateReader is the stored state the state collector reads (implemented
// by *store.Store).
type StateReader interface {
	OutboxDepth(ctx context.Context) (pending int64, oldest time.Time, err error)
	TimerCount(ctx context.Context, contract string) (int64, error)
}

// StateOptions tune NewStateCollector.
type StateOptions struct {
	// Contracts whose pending timers are counted ("" for tickets without a
	// contract, shown as NoContract).
	Contracts []string
	// TTL is how long a reading is reused by later scrapes (default 5s), so
	// that several scrapers do not multiply the Redis reads.
	TTL time.Duration
	// Timeout bounds one reading (default 2s).
	Timeout time.Duration
	Now     func() time.Time // default time.Now
	Log     *slog.Logger     // reading failures, at warning level
}

// stateCollector reads the outbox and the timers from Redis when scraped,
// at most once per TTL.
type stateCollector struct {
	st  StateReader
	opt StateOptions

	depth, oldestAge, timers *prometheus.Desc

	mu     sync.Mutex // held during a reading: concurrent scrapes share it
	readAt time.Time  // monotonic clock; zero: never read
	ok     bool       // the last reading succeeded
	snap   stateSnapshot
}

type stateSnapshot struct {
	depth     int64
	oldestAge time.Duration
	timers    []int64 // per opt.Contracts
}

// NewStateCollector exports the outbox depth, the age of its oldest entry,
// and the pending SLA timers per contract, read from st when scraped. When a
// reading fails, these series are left out of that scrape (and the failure
// is logged) rather than showing stale values.
func NewStateCollector(st StateReader, opt StateOptions) prometheus.Collector {
	if opt.TTL <= 0 {
		opt.TTL = 5 * time.Second
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 2 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	// One series per label value: "" and NoContract are the same series.
	seen := map[string]bool{}
	var contracts []string
	for _, ct := range opt.Contracts {
		if l := contractLabel(ct); !seen[l] {
			seen[l] = true
			contracts = append(contracts, ct)
		}
	}
	opt.Contracts = contracts
	return &stateCollector{
		st:  st,
		opt: opt,
		depth: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "outbox", "depth"),
			"Outgoing mail not sent yet (due, waiting for a retry, or in flight).", nil, nil),
		oldestAge: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "outbox", "oldest_age_seconds"),
			"Age of the oldest unsent outgoing mail (0 when the outbox is empty).", nil, nil),
		timers: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "sla", "timers_pending"),
			"SLA timers (warnings and deadlines) scheduled and not fired yet, by contract.", []string{"contract"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldestAge
	ch <- c.timers
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	snap, ok := c.read()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(snap.depth))
	ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, snap.oldestAge.Seconds())
	for i, n := range snap.timers {
		ch <- prometheus.MustNewConstMetric(c.timers, prometheus.GaugeValue, float64(n), contractLabel(c.opt.Contracts[i]))
	}
}

// read returns the cached reading while it is fresh, else reads anew.
func (c *stateCollector) read() (stateSnapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && time.Since(c.readAt) < c.opt.TTL {
		return c.snap, c.ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opt.Timeout)
	defer cancel()
	snap, err := c.readState(ctx)
	c.readAt, c.ok, c.snap = time.Now(), err == nil, snap
	if err != nil {
		c.opt.Log.Warn("metrics: reading the outbox and timers failed", "err", err)
	}
	return c.snap, c.ok
}

func (c *stateCollector) readState(ctx context.Context) (stateSnapshot, error) {
	var s stateSnapshot
	depth, oldest, err := c.st.OutboxDepth(ctx)
	if err != nil {
		return stateSnapshot{}, err
	}
	s.depth = depth
	if !oldest.IsZero() {
		s.oldestAge = max(c.opt.Now().Sub(oldest), 0)
	}
	s.timers = make([]int64, len(c.opt.Contracts))
	for i, ct := range c.opt.Contracts {
		if s.timers[i], err = c.st.TimerCount(ctx, ct); err != nil {
			return stateSnapshot{}, err
		}
	}
	return s, nil
}

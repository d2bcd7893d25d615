package service

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/metrics"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/store"
)

// DefaultSMTPCheckTTL is how long /readyz reuses the result of an SMTP
// check, so that frequent readiness probes do not open a session each time.
const DefaultSMTPCheckTTL = 15 * time.Second

// Outcome actions (Outcome.Action), pre-set in the metrics so that each
// series exists from the first scrape.
var outcomeActions = []string{"ticket", "duplicate", "follow-up", "staff-reply", "staff", "automatic", "dropped",
	"unknown-sender", "unauthenticated", "command-error", "on-behalf", "already-processed"}

// Kinds of outgoing mail (store.OutboxEntry.Kind).
var mailKinds = []string{"ack", "forward", "relay", "resolved", "unknown-sender", "command-error",
	"sla-" + notify.KindWarn, "sla-" + notify.KindBreach}

// autoReasons are the ack_reason values of automatic mail and loop guards.
var autoReasons = []string{string(domain.AutoReply), string(domain.Bounce), string(domain.List), string(domain.Loop),
	string(domain.Self), string(domain.NoReply)}

var _ oauth.Observer = (*metrics.Metrics)(nil)

// observer holds what the gateway's observability needs beyond the
// metrics themselves.
type observer struct {
	ready      *metrics.Readiness
	collectors []prometheus.Collector // the IMAP and state collectors, attached by Run
	known      metrics.Known          // the configuration's label values, preset by Run
	reading    []atomic.Bool          // per mailbox: this instance holds its lease and reads it
	httpAddr   atomic.Pointer[string]
}

// observe sets up g.Metrics: event hooks on the outbox sender and the timer
// worker, collectors reading the IMAP sources and the stored state when
// scraped, and the readiness checks.
func (g *Gateway) observe() error {
	m := g.Metrics
	g.obs = &observer{reading: make([]atomic.Bool, len(g.Sources))}
	contracts := make([]string, 0, len(g.Cfg.Contracts)+1)
	for _, c := range g.Cfg.Contracts {
		contracts = append(contracts, c.ID)
	}
	contracts = append(contracts, "") // tickets of unknown senders
	var mailboxes []metrics.Mailbox
	var names, accounts []string
	for i, src := range g.Sources {
		mb := g.Cfg.Mailboxes[i]
		names = append(names, mb.Address)
		mailboxes = append(mailboxes, metrics.Mailbox{Name: mb.Address, Source: src, Reading: g.obs.reading[i].Load})
		if mb.OAuth != nil {
			accounts = append(accounts, mb.Address) // the token source's name
		}
	}
	if g.Cfg.SMTP.OAuth != nil {
		accounts = append(accounts, g.Cfg.SMTP.Username)
	}
	// Preset, with the collectors below, when the gateway runs (Run): a
	// reload builds the next gateway while this one still runs, and may
	// yet refuse it.
	g.obs.known = metrics.Known{
		Mailboxes: names, Outcomes: outcomeActions, Contracts: contracts,
		Categories: []string{string(domain.Fault), string(domain.Request), string(domain.IMAC)},
		MailKinds:  mailKinds, LoopReasons: append(append([]string{}, autoReasons...), ReasonRateLimit),
		Accounts: accounts,
	}
	g.obs.collectors = []prometheus.Collector{
		metrics.NewIMAPCollector(mailboxes),
		metrics.NewStateCollector(g.Store, metrics.StateOptions{
			Contracts: contracts, Now: g.opt.Now, Log: g.Log.With("component", "metrics"),
		}),
	}
	if g.opt.Metrics == nil {
		// The gateway's own metrics: its configuration is loaded. Shared
		// ones (Options.Metrics, a reload manager) are told by whoever
		// loads and swaps configurations (ConfigReloaded), so that a
		// reload refused meanwhile does not read as a success.
		m.ConfigLoaded(true, g.opt.Now())
	}
	g.Outbox.Observer = m
	g.Timers.OnOutcome = g.observeTimer
	smtpTTL := g.opt.SMTPCheckTTL
	if smtpTTL <= 0 {
		smtpTTL = DefaultSMTPCheckTTL
	}
	g.obs.ready = metrics.NewReadiness(0,
		metrics.IMAPCheck(mailboxes),
		metrics.Check{Name: "redis", Probe: g.Store.Ping, TTL: time.Second},
		metrics.Check{Name: "smtp", Probe: g.smtp.Ping, TTL: smtpTTL},
	)
	return nil
}

// Handler returns the handler for messages of mailbox: the pipeline, with
// the mailbox in its log lines and metrics, and the message's arrival
// stamped on the mail it causes (store.WithArrival) for the
// arrival-to-send metrics. Every ingest path should hand messages to a
// handler from here. Call it once per mailbox, after any change to
// g.Pipeline: it works on a copy taken now.
func (g *Gateway) Handler(mailbox string) ingest.Handler {
	p := g.mailboxPipeline(mailbox)
	now := g.opt.Now
	return func(ctx context.Context, f *ingest.Fetched) error {
		return p.Handle(store.WithArrival(ctx, now()), f)
	}
}

// BatchHandler is Handler for batches of messages (Pipeline.HandleBatch).
func (g *Gateway) BatchHandler(mailbox string) ingest.BatchHandler {
	p := g.mailboxPipeline(mailbox)
	now := g.opt.Now
	return func(ctx context.Context, fs []*ingest.Fetched) []error {
		return p.HandleBatch(store.WithArrival(ctx, now()), fs)
	}
}

// mailboxPipeline is the gateway's pipeline for one mailbox's messages:
// its outcomes counted and logged under the mailbox.
func (g *Gateway) mailboxPipeline(mailbox string) *Pipeline {
	p := *g.Pipeline // shares the store, classifier and templates
	parent := g.Pipeline.OnOutcome
	p.OnOutcome = func(o Outcome) {
		g.observeOutcome(mailbox, o)
		if parent != nil {
			parent(o)
		}
	}
	p.Log = p.Log.With("mailbox", mailbox)
	return &p
}

// observeOutcome counts one handled message.
func (g *Gateway) observeOutcome(mailbox string, o Outcome) {
	g.Metrics.MessageIngested(mailbox, o.Action)
	if o.Created {
		g.Metrics.TicketOpened(o.Ticket.Contract, string(o.Ticket.Category))
	}
	if r := loopReason(o); r != "" {
		g.Metrics.LoopSuppressed(r)
	}
}

// loopReason says why a message got no automatic answer for fear of a loop
// ("" when it got one or needed none): automatic mail by its evidence, a
// new ticket whose acknowledgement the per-sender rate limit or the loop
// guard suppressed.
func loopReason(o Outcome) string {
	reason := o.Decision.Class.AckReason
	switch {
	case o.Action == "automatic":
		for _, r := range autoReasons {
			if reason == r {
				return r
			}
		}
		if m := o.Decision.Msg; m != nil && m.Auto != domain.Human {
			return string(m.Auto)
		}
		return string(domain.Loop) // a reply to our own automatic mail
	case o.Created && !o.Decision.Class.Ack && (reason == ReasonRateLimit || reason == string(domain.Loop)):
		return reason
	}
	return ""
}

// observeTimer counts the notices of fired SLA timers (once each: a timer
// delivered again after a crash queues nothing new).
func (g *Gateway) observeTimer(o TimerOutcome) {
	if !o.Queued {
		return
	}
	switch o.Action {
	case TimerWarned:
		g.Metrics.SLAWarned(o.Timer.Contract)
	case TimerBreached:
		g.Metrics.SLABreached(o.Timer.Contract)
	}
}

// readMailbox runs source i (while this instance holds its lease), marked
// as read by this instance for the metrics and the readiness check.
func (g *Gateway) readMailbox(ctx context.Context, i int, src *ingest.Source, h ingest.Handler, bh ingest.BatchHandler) error {
	g.obs.reading[i].Store(true)
	defer g.obs.reading[i].Store(false)
	return src.RunBatches(ctx, h, bh)
}

// serveHTTP starts /metrics, /healthz and /readyz on service.http (nothing
// when it is empty). fail is called when the server stops by itself; stop
// shuts it down gracefully and returns the error that stopped it, if any.
func (g *Gateway) serveHTTP(ctx context.Context, fail func()) (stop func() error, err error) {
	addr := g.Cfg.Service.HTTP
	if addr == "" {
		return func() error { return nil }, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on service.http %s: %w", addr, err)
	}
	bound := ln.Addr().String()
	g.obs.httpAddr.Store(&bound)
	log := g.Log.With("component", "http")
	// The server outlives ctx until the workers have stopped, so that the
	// last metrics can be scraped during a graceful stop.
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		err := metrics.Serve(hctx, ln, g.Metrics.Handler(g.obs.ready, log), log)
		if err != nil && hctx.Err() == nil {
			log.Error("http server stopped", "err", err)
			fail()
		}
		done <- err
	}()
	log.Info("serving /metrics, /healthz and /readyz", "addr", bound)
	return func() error {
		cancel()
		err := <-done
		g.obs.httpAddr.Store(nil)
		return err
	}, nil
}

// HTTPAddr returns the address /metrics, /healthz and /readyz are served on
// while Run runs (the bound port when service.http asks for port 0), else
// "".
func (g *Gateway) HTTPAddr() string {
	if p := g.obs.httpAddr.Load(); p != nil {
		return *p
	}
	return ""
}

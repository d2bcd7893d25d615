package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/lmtp"
	"github.com/northwind-it/ticketgw/metrics"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/store"
)

// Options are the knobs tests and the demo turn; the zero value is what
// `gateway run` uses.
type Options struct {
	Now         func() time.Time      // clock for Date headers and the outbox; default time.Now
	IMAPDialer  ingest.DialFunc       // fault injection in tests
	IMAPOptions []ingest.SourceOption // extra source options
	Redis       redis.UniversalClient // use this client instead of dialling redis.url
	// Metrics, when set, is used instead of new metrics: the gateway a
	// configuration reload builds gets its predecessor's, so that the
	// counters go on (metrics.Metrics.Attach).
	Metrics     *metrics.Metrics
	OnOutcome   func(Outcome)
	OnReload    func(ok bool) // told whether a configuration (re)load succeeded
	InstanceID  string        // owner name in mailbox leases; default host/pid/random
	LeaseTTL    time.Duration // mailbox lease; default DefaultLeaseTTL
	OutboxIdle  time.Duration
	OutboxLease time.Duration // claim on outgoing mail; default DefaultOutboxLease
	IMAPWorkers int           // messages of a mailbox handled at once; default DefaultIMAPWorkers, 1: one by one
	// IMAPOneByOne hands each message read from a mailbox to the handler on
	// its own, never in a batch (Pipeline.HandleBatch): for comparisons.
	IMAPOneByOne bool
	// SMTPCheckTTL is how long /readyz reuses an SMTP check's result;
	// default DefaultSMTPCheckTTL.
	SMTPCheckTTL time.Duration
}

// Gateway is the running service: one IMAP source per mailbox feeding the
// pipeline, and the outbox sender.
type Gateway struct {
	Cfg      *rules.Config
	Log      *slog.Logger
	Store    *store.Store
	Pipeline *Pipeline
	Outbox   *OutboxSender
	Timers   *TimerWorker
	LMTP     *lmtp.Server // push ingestion (cfg.LMTP); nil when not configured
	Sources  []*ingest.Source
	// Metrics are served on service.http with /healthz and /readyz while
	// Run runs; they also observe the OAuth token sources.
	Metrics *metrics.Metrics

	opt     Options
	rdb     redis.UniversalClient
	ownRDB  bool
	smtp    *notify.Sender
	tokens  []tokenSource // OAuth token sources, waited for by Close
	closeMu sync.Once
	obs     *observer
}

// OpenRedis connects to cfg's Redis (one server, a Cluster or a Sentinel
// master, see ParseRedisURL) and checks that it answers.
func OpenRedis(ctx context.Context, cfg *rules.Config) (redis.UniversalClient, error) {
	opt, err := RedisOptions(cfg.Redis)
	if err != nil {
		return nil, err
	}
	withRedisDialer(opt)
	rdb := redis.NewUniversalClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("connect to redis at %s: %w", RedisAddrDesc(opt), err)
	}
	return rdb, nil
}

// New builds a gateway for cfg: it connects to Redis and prepares (but does
// not dial) SMTP and IMAP.
func New(ctx context.Context, cfg *rules.Config, tmpl *notify.Templates, log *slog.Logger, opt Options) (*Gateway, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	m := opt.Metrics
	if m == nil {
		m = metrics.New()
	}
	g := &Gateway{Cfg: cfg, Log: log, rdb: opt.Redis, opt: opt, Metrics: m}
	if g.rdb == nil {
		rdb, err := OpenRedis(ctx, cfg)
		if err != nil {
			return nil, err
		}
		g.rdb, g.ownRDB = rdb, true
	}
	if w := CheckPersistence(ctx, g.rdb); w != "" {
		log.Warn(w, "component", "redis")
	}
	g.Store = store.New(g.rdb, cfg.Redis.Prefix)
	sc := cfg.SMTP
	smtpTokens, err := newTokenSource(sc.OAuth, sc.Username, log, g.Metrics, g.Store)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if smtpTokens != nil {
		g.tokens = append(g.tokens, smtpTokens)
	}
	smtp, err := notify.NewSender(notify.SMTPConfig{
		Host: sc.Host, Port: sc.Port, TLS: sc.TLS, AllowPlaintext: sc.AllowPlaintext,
		InsecureSkipVerify: sc.InsecureSkipVerify, Username: sc.Username, Password: sc.Password.Reveal(),
		Auth: sc.Auth, TokenSource: smtpTokens, Connections: sc.Connections,
	}, log.With("component", "smtp"))
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("smtp: %w", err)
	}
	g.smtp = smtp
	g.Outbox = &OutboxSender{Outbox: g.Store, Sender: smtp, Log: log.With("component", "outbox"), Now: opt.Now,
		Workers: max(sc.Connections, 1), Idle: opt.OutboxIdle, Lease: opt.OutboxLease}
	g.Timers = &TimerWorker{Cfg: cfg, Store: g.Store, Templates: tmpl, Log: log.With("component", "timers"),
		Now: opt.Now, Kick: g.Outbox.Kick}
	g.Pipeline = NewPipeline(cfg, tmpl, g.Store, log.With("component", "pipeline"), opt.Now)
	g.Pipeline.OnQueued = g.Outbox.Hold
	g.Pipeline.OnOutcome = func(o Outcome) {
		g.Outbox.Kick()
		if opt.OnOutcome != nil {
			opt.OnOutcome(o)
		}
	}
	var lmtpIMAP ingest.IMAPConfig
	processed := map[string]ingest.IMAPConfig{} // for the outbox's large originals
	var fetchOpts []ingest.SourceOption
	for _, mb := range cfg.Mailboxes {
		tokens, err := newTokenSource(mb.OAuth, mb.Address, log, g.Metrics, g.Store)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("mailbox %s: %w", mb.Address, err)
		}
		if tokens != nil {
			g.tokens = append(g.tokens, tokens)
		}
		ic := ingest.IMAPConfig{
			Addr: net.JoinHostPort(mb.Host, strconv.Itoa(mb.Port)), TLS: mb.TLS,
			AllowPlaintext: mb.AllowPlaintext, InsecureSkipVerify: mb.InsecureSkipVerify,
			Username: mb.Username, Password: mb.Password.Reveal(), Auth: imapAuth(mb.Auth), TokenSource: tokens,
			Folder: mb.Folder, ProcessedFolder: mb.ProcessedFolder, Name: mb.Address,
			IDLE: mb.IDLE, PollInterval: mb.PollInterval,
		}
		if err := ic.Validate(); err != nil {
			g.Close()
			return nil, fmt.Errorf("mailbox %s: %w", mb.Address, err)
		}
		if cfg.LMTP != nil && strings.EqualFold(mb.Address, cfg.LMTP.Mailbox) {
			lmtpIMAP = ic // the processed copies of pushed mail are filed here
		}
		opts := append([]ingest.SourceOption{}, opt.IMAPOptions...)
		if opt.IMAPDialer != nil {
			opts = append(opts, ingest.WithDialer(opt.IMAPDialer))
		}
		processed[ic.Name], fetchOpts = ic, opts
		workers := opt.IMAPWorkers
		if workers == 0 {
			workers = DefaultIMAPWorkers
		}
		sopts := slices.Concat(opts, []ingest.SourceOption{ingest.WithConcurrency(workers, g.Pipeline.OrderKeys),
			ingest.WithProcessedLookup(g.Store.ProcessedMany)})
		g.Sources = append(g.Sources, ingest.NewSource(ic, g.Store, log.With("component", "imap"), sopts...)) // the source adds "mailbox"
	}
	g.Outbox.Fetch = ProcessedFetcher(processed, fetchOpts...)
	if err := g.observe(); err != nil {
		g.Close()
		return nil, err
	}
	if cfg.LMTP != nil {
		var aopts []lmtp.AppenderOption
		if opt.IMAPDialer != nil {
			aopts = append(aopts, lmtp.WithIMAPDialer(opt.IMAPDialer))
		}
		srv, err := lmtp.FromRules(cfg, lmtpIMAP, g.Handler(cfg.LMTP.Mailbox), log.With("component", "lmtp"), nil, aopts...)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("lmtp: %w", err)
		}
		g.LMTP = srv
	}
	return g, nil
}

// imapAuth maps the config's auth to the IMAP source's (the same names;
// the config's default is plain).
func imapAuth(a string) string {
	switch a {
	case "login", "xoauth2", "oauthbearer":
		return a
	default:
		return "plain"
	}
}

// Run ingests and sends until ctx is cancelled, then stops gracefully: each
// source finishes the message in hand, the sender finishes its sends.
func (g *Gateway) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The metrics may be a previous gateway's (a reload): this one's
	// collectors and label values take over now that it runs.
	if err := g.Metrics.Attach(g.obs.collectors...); err != nil {
		return fmt.Errorf("register the imap and state metrics: %w", err)
	}
	g.Metrics.Preset(g.obs.known)
	// Not ConfigLoaded: see observe.
	stopHTTP, err := g.serveHTTP(ctx, cancel)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(g.Sources)+4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := g.Outbox.Run(ctx); err != nil {
			errs <- fmt.Errorf("outbox: %w", err)
			cancel()
		}
	}()
	if g.LMTP != nil {
		// Push ingestion runs on every instance (no lease): the store
		// deduplicates, and the MTA retries whatever is refused.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.LMTP.Run(ctx); err != nil {
				errs <- fmt.Errorf("lmtp: %w", err)
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Quarterly reviews on the first business day of a quarter, once
		// across instances (returns at once when the schedule is off).
		q := &QBRScheduler{Cfg: g.Cfg, Store: g.Store, Log: g.Log.With("component", "qbr"), Now: g.opt.Now, Kick: g.Outbox.Kick}
		if err := q.Run(ctx); err != nil {
			errs <- fmt.Errorf("qbr: %w", err)
			cancel()
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := g.Timers.Run(ctx); err != nil {
			errs <- fmt.Errorf("timers: %w", err)
			cancel()
		}
	}()
	// A changed calendar or target moves the open tickets' deadlines (once
	// across instances).
	now := time.Now
	if g.opt.Now != nil {
		now = g.opt.Now
	}
	if _, err := RecalcDeadlines(ctx, g.Cfg, g.Store, now(), g.Log); err != nil {
		g.Log.Warn("recompute deadlines after a configuration change failed", "err", err)
	}
	owner := g.opt.InstanceID
	if owner == "" {
		owner = InstanceID()
	}
	for i, src := range g.Sources {
		mailbox := g.Cfg.Mailboxes[i].Address
		h, bh := g.Handler(mailbox), g.BatchHandler(mailbox)
		if g.opt.IMAPOneByOne {
			bh = nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Only the holder of the mailbox's lease reads it; other
			// instances stand by and take over when it dies.
			err := RunLeased(ctx, g.Store, mailbox, owner, g.opt.LeaseTTL, g.Log.With("component", "lease"),
				func(ctx context.Context) error { return g.readMailbox(ctx, i, src, h, bh) })
			if err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("mailbox: %w", err)
				cancel()
			}
		}()
	}
	g.Log.Info("gateway running", "mailboxes", len(g.Sources), "contracts", len(g.Cfg.Contracts), "rules", len(g.Cfg.Rules))
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := stopHTTP(); err != nil {
		all = append(all, err)
	}
	g.Log.Info("gateway stopped")
	return errors.Join(all...)
}

// Close releases connections.
func (g *Gateway) Close() {
	g.closeMu.Do(func() {
		// An OAuth refresh whose request is out saves the token the
		// endpoint rotates to in Redis: let it finish first. One that
		// has not sent its request gives up.
		for _, ts := range g.tokens {
			ts.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), tokenWaitTimeout)
		for _, ts := range g.tokens {
			if err := ts.Wait(ctx); err != nil {
				g.Log.Warn("closing while an oauth refresh is still running", "err", err)
			}
		}
		cancel()
		if g.smtp != nil {
			g.smtp.Close()
		}
		if g.ownRDB && g.rdb != nil {
			g.rdb.Close()
		}
	})
}

// ConfigReloaded reports the outcome of a configuration load or reload (the
// running configuration is kept when ok is false).
func (g *Gateway) ConfigReloaded(ok bool) {
	g.Metrics.ConfigLoaded(ok, g.opt.Now())
	if g.opt.OnReload != nil {
		g.opt.OnReload(ok)
	}
}

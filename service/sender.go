package service

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/internal/gopool"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/store"
)

// Outbox is what the sender loop needs of the store.
type Outbox interface {
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, max int) ([]store.OutboxEntry, error)
	AckOutbox(ctx context.Context, key string, now time.Time) error
	RetryOutbox(ctx context.Context, key string, at time.Time, errText string) error
	ExtendOutbox(ctx context.Context, until time.Time, keys ...string) (int, error)
}

// MailSender delivers composed mail (implemented by *notify.Sender).
type MailSender interface {
	Send(ctx context.Context, env notify.Envelope, raw []byte) error
}

// SendObserver is told how each send attempt ended (implemented by
// *metrics.Metrics).
type SendObserver interface {
	// MailSent: the relay accepted mail of kind at sent; arrived is when the
	// message that caused it reached the gateway (zero when unknown).
	MailSent(kind string, arrived, sent time.Time)
	// MailFailed: an attempt failed and will be retried (or, permanent
	// and out of attempts, is dropped: MailDropped follows).
	MailFailed(kind string, temporary bool)
	MailDropped(kind string)
}

// OutboxSender drains the outbox to SMTP: it claims due entries with a lease
// (so several instances never send one entry twice while it is in flight, and
// a crashed instance's claims come back when the lease ends), sends each, and
// acknowledges or reschedules it with backoff. An SMTP outage delays mail and
// loses none. The lease is short and renewed every third of it while the
// batch is in hand, so a slow send keeps its claim and a crash costs the
// customers whose mail was in flight seconds, not minutes.
type OutboxSender struct {
	Outbox  Outbox
	Sender  MailSender
	Log     *slog.Logger
	Now     func() time.Time
	Lease   time.Duration // default DefaultOutboxLease; renewed while sending
	Batch   int           // entries claimed at once; default Workers, or Workers × 8 when the Sender pipelines
	Workers int           // parallel sends, default 4
	Idle    time.Duration // poll period when nothing is kicked, default 1s
	// MaxAttempts after which a permanently failing entry is dropped (logged
	// at error level). Temporary failures are retried for as long as the
	// entry is retained.
	MaxAttempts int
	// Observer, when set, is told the result of every attempt (metrics).
	Observer SendObserver
	// Fetch finds the original of an entry that refers to it (a large
	// message, see outboxInlineBytes) in its mailbox's processed folder;
	// Sender must then also be a StreamSender. Without it such entries are
	// retried (another instance may send them).
	Fetch FetchOriginal

	kick chan struct{}
	once sync.Once
	held heldMail    // mail this instance queued, not yet claimed (Hold)
	pool gopool.Pool // the sends, on goroutines whose stacks stay grown
}

func (o *OutboxSender) init() {
	o.once.Do(func() {
		o.kick = make(chan struct{}, 1)
		if o.Now == nil {
			o.Now = time.Now
		}
		if o.Lease <= 0 {
			o.Lease = DefaultOutboxLease
		}
		if o.Workers <= 0 {
			o.Workers = 4
		}
		if o.Idle <= 0 {
			o.Idle = time.Second
		}
		if o.MaxAttempts <= 0 {
			o.MaxAttempts = 5
		}
	})
}

// DefaultOutboxLease is how long a claimed outgoing message stays with the
// instance that claimed it without a renewal: what a crash delays it by.
const DefaultOutboxLease = 15 * time.Second

// Kick wakes the loop at once (after something was queued). It never blocks.
func (o *OutboxSender) Kick() {
	o.init()
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Run sends until ctx is cancelled. Sends already begun when ctx ends are
// finished and recorded (each bounded by the sender's own timeout), so that a
// graceful stop sends nothing twice; claimed entries not yet begun are given
// back at once for the next instance. Only a crash leaves entries to their
// lease (sent again later: at least once, with the same Message-ID).
func (o *OutboxSender) Run(ctx context.Context) error {
	o.init()
	timer := time.NewTimer(0)
	defer timer.Stop()
	// carry: a full batch's sent mail, acknowledged with the next claim
	// (one round trip for both), or at once when there is none.
	var carry []pendingAck
	defer func() { o.ackBatch(ctx, carry) }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.kick:
		case <-timer.C:
		}
		size := o.claimSize()
		n, acks, err := o.drain(ctx, carry, size)
		carry = nil
		if err != nil && ctx.Err() == nil {
			o.Log.Warn("outbox: claim failed", "err", err)
		}
		wait := o.Idle
		if n >= size {
			// A full batch: more may be due. After a smaller one, nothing
			// else was due when it was claimed; mail queued since then
			// kicks the loop, and what falls due (a retry, a lapsed lease)
			// waits for the next poll as it would after an empty claim.
			// This saves a claim round trip per batch.
			wait = 0
		} else if err != nil {
			wait = 2 * time.Second
		}
		if _, ok := o.Outbox.(ackClaimer); ok && wait == 0 && ctx.Err() == nil {
			carry = acks // the next claim, at once, acknowledges them
		} else {
			o.ackBatch(ctx, acks)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// drain acknowledges carry (with the claim when the Outbox can), claims
// and sends one batch; it returns how many entries it claimed and, with a
// batchAcker, the batch's entries to acknowledge.
func (o *OutboxSender) drain(ctx context.Context, carry []pendingAck, size int) (int, []pendingAck, error) {
	entries, claimed, err := o.claim(ctx, carry, size)
	if err != nil || len(entries) == 0 {
		return claimed, nil, err
	}
	hb := o.renewLeases(ctx, entries)
	defer hb.stop()
	// With a batchAcker, the entries sent are acknowledged together once
	// the batch's sends are done: one round trip instead of one per mail.
	// Their leases are renewed until then.
	var acks *ackBatch
	if _, ok := o.Outbox.(batchAcker); ok {
		acks = &ackBatch{}
	}
	sem := make(chan struct{}, o.Workers)
	var wg sync.WaitGroup
	groups := o.sendGroups(entries)
	for i, group := range groups {
		if ctx.Err() == nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil { // shutting down: start no new send
			rest := slices.Concat(groups[i:]...)
			o.giveBack(ctx, rest)
			for _, e := range rest {
				hb.done(e.Key)
			}
			break
		}
		wg.Add(1)
		o.pool.Go(func() {
			defer func() { <-sem; wg.Done() }()
			for k, err := range o.send(ctx, group) {
				if !o.record(ctx, group[k], err, acks) {
					hb.done(group[k].Key)
				}
			}
		})
	}
	wg.Wait()
	if acks == nil {
		return claimed, nil, nil
	}
	return claimed, acks.list, nil
}

// batchAcker is an Outbox that acknowledges several entries in one round
// trip (implemented by *store.Store).
type batchAcker interface {
	AckOutboxMany(ctx context.Context, keys []string, now time.Time) error
}

// ackClaimer is an Outbox that acknowledges entries and claims the next
// batch in one round trip (implemented by *store.Store).
type ackClaimer interface {
	AckClaimOutboxMeta(ctx context.Context, ack []string, now time.Time, lease time.Duration, max int) ([]store.OutboxEntry, error)
}

// ackBatch collects the entries of a batch to acknowledge: sent, or dropped
// after permanent failures.
type ackBatch struct {
	mu   sync.Mutex
	list []pendingAck
}

type pendingAck struct {
	e    store.OutboxEntry
	drop bool
}

func (b *ackBatch) add(e store.OutboxEntry, drop bool) {
	b.mu.Lock()
	b.list = append(b.list, pendingAck{e, drop})
	b.mu.Unlock()
}

func ackKeys(list []pendingAck) []string {
	keys := make([]string, len(list))
	for i, a := range list {
		keys[i] = a.e.Key
	}
	return keys
}

// ackBatch acknowledges the entries of a batch in one round trip, with a
// fresh context: a graceful stop records what was sent.
func (o *OutboxSender) ackBatch(ctx context.Context, list []pendingAck) {
	if len(list) == 0 {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	o.logAcked(list, o.Outbox.(batchAcker).AckOutboxMany(actx, ackKeys(list), o.Now()))
}

// logAcked logs how acknowledging list ended (err nil: acknowledged).
func (o *OutboxSender) logAcked(list []pendingAck, err error) {
	for _, a := range list {
		e := a.e
		switch {
		case err != nil && a.drop:
			o.Log.Error("outbox: drop failed", "outbox_key", e.Key, "kind", e.Kind, "ticket", e.Ticket, "attempt", e.Attempts, "err", err)
		case err != nil:
			o.Log.Error("outbox: sent but not acknowledged; it will be sent again",
				"outbox_key", e.Key, "kind", e.Kind, "ticket", e.Ticket, "attempt", e.Attempts, "err", err)
		case !a.drop:
			o.Log.Info("mail sent", "outbox_key", e.Key, "kind", e.Kind, "ticket", e.Ticket, "attempt", e.Attempts, "to", e.To)
		}
	}
}

// leaseRenewer extends the leases of a batch's entries until each is done.
type leaseRenewer struct {
	mu   sync.Mutex
	held map[string]bool
	quit chan struct{}
	wg   sync.WaitGroup
}

// renewLeases starts renewing the leases of entries every third of the lease,
// until stop. Renewal uses its own context: during a graceful stop the sends
// in hand are finished, and their leases must hold until then.
func (o *OutboxSender) renewLeases(ctx context.Context, entries []store.OutboxEntry) *leaseRenewer {
	r := &leaseRenewer{held: make(map[string]bool, len(entries)), quit: make(chan struct{})}
	for _, e := range entries {
		r.held[e.Key] = true
	}
	every := max(o.Lease/3, 10*time.Millisecond)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.quit:
				return
			case <-t.C:
			}
			r.mu.Lock()
			keys := make([]string, 0, len(r.held))
			for k := range r.held {
				keys = append(keys, k)
			}
			r.mu.Unlock()
			if len(keys) == 0 {
				continue
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
			_, err := o.Outbox.ExtendOutbox(rctx, o.Now().Add(o.Lease), keys...)
			cancel()
			if err != nil {
				o.Log.Warn("outbox: could not renew leases; another instance may send these again", "entries", len(keys), "err", err)
			}
		}
	}()
	return r
}

func (r *leaseRenewer) done(key string) {
	r.mu.Lock()
	delete(r.held, key)
	r.mu.Unlock()
}

func (r *leaseRenewer) stop() {
	close(r.quit)
	r.wg.Wait()
}

// giveBack returns claimed entries that were never tried to the queue, due
// now, so that another instance sends them without waiting for the lease.
func (o *OutboxSender) giveBack(ctx context.Context, entries []store.OutboxEntry) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, e := range entries {
		if err := o.Outbox.RetryOutbox(actx, e.Key, o.Now(), "not tried: shutting down"); err != nil {
			o.Log.Warn("outbox: could not give back an unsent entry; the lease brings it back", "outbox_key", e.Key, "err", err)
		}
	}
}

// manySender delivers several messages on one session (implemented by
// *notify.Sender); Pipelines reports whether it does so in one write (the
// relay's last session offered CHUNKING and PIPELINING).
type manySender interface {
	SendMany(ctx context.Context, msgs []notify.Outgoing) []error
	Pipelines() bool
}

// pipelined reports whether the Sender sends several messages in one write
// (its relay offers it): only then are they grouped and claimed eight
// times as many.
func (o *OutboxSender) pipelined() bool {
	ms, ok := o.Sender.(manySender)
	return ok && ms.Pipelines()
}

// claimSize is how many entries a drain claims: Batch when set; otherwise
// as many as the Workers can send at once (outboxPipelined each when the
// Sender pipelines), so that entries waiting behind slow sends do not
// outlive their lease and get claimed (and sent) by another instance too.
func (o *OutboxSender) claimSize() int {
	switch {
	case o.Batch > 0:
		return o.Batch
	case o.pipelined():
		return o.Workers * outboxPipelined
	}
	return o.Workers
}

// outboxPipelined is the most mail one session is given at a time
// (manySender): the transactions go out in one write.
const outboxPipelined = 8

// sendGroups splits a claimed batch into what one send takes: a group of
// inline mail for one session when the Sender pipelines (manySender), at
// most outboxPipelined each and spread over the Workers; otherwise, and
// for mail composed from its original (Ref), one entry each.
func (o *OutboxSender) sendGroups(entries []store.OutboxEntry) [][]store.OutboxEntry {
	var groups [][]store.OutboxEntry
	var inline []store.OutboxEntry
	many := o.pipelined()
	for _, e := range entries {
		if many && !(e.Ref != nil && len(e.Recipe) > 0) {
			inline = append(inline, e)
			continue
		}
		groups = append(groups, []store.OutboxEntry{e})
	}
	if len(inline) == 0 {
		return groups
	}
	size := min(outboxPipelined, (len(inline)+o.Workers-1)/o.Workers)
	for g := range slices.Chunk(inline, size) {
		groups = append(groups, g)
	}
	return groups
}

// send sends entries (a group of sendGroups) and returns each one's error.
// A send that has begun is finished even when shutdown begins (the sender
// bounds it with its own timeout): cut short, the relay may already hold
// the message, which the next instance would send again.
func (o *OutboxSender) send(ctx context.Context, entries []store.OutboxEntry) []error {
	ctx = context.WithoutCancel(ctx)
	if ms, ok := o.Sender.(manySender); ok && len(entries) > 1 { // grouped by sendGroups
		msgs := make([]notify.Outgoing, len(entries))
		for i, e := range entries {
			msgs[i] = notify.Outgoing{Env: notify.Envelope{From: e.From, To: e.To}, Raw: e.Raw}
		}
		return ms.SendMany(ctx, msgs)
	}
	errs := make([]error, len(entries))
	for i, e := range entries {
		if e.Ref != nil && len(e.Recipe) > 0 {
			errs[i] = o.sendByReference(ctx, e)
		} else {
			errs[i] = o.Sender.Send(ctx, notify.Envelope{From: e.From, To: e.To}, e.Raw)
		}
	}
	return errs
}

// record records how sending e ended (err nil: sent): a failure is
// rescheduled (or, permanent and out of attempts, dropped); a success or a
// drop is acknowledged, at once, or, with acks, added to the batch's
// acknowledgement (record then reports true).
func (o *OutboxSender) record(ctx context.Context, e store.OutboxEntry, err error, acks *ackBatch) (deferred bool) {
	attrs := func(more ...any) []any {
		return append([]any{"outbox_key", e.Key, "kind", e.Kind, "ticket", e.Ticket, "attempt", e.Attempts}, more...)
	}
	o.observe(e, err)
	drop := err != nil && !notify.IsTemporary(err) && e.Attempts >= o.MaxAttempts
	if err == nil || drop {
		o.held.forget(e.Key) // held after its claim
	}
	if drop {
		o.Log.Error("outbox: giving up after permanent failures", attrs("err", err)...)
		if o.Observer != nil {
			o.Observer.MailDropped(e.Kind)
		}
	}
	if (err == nil || drop) && acks != nil {
		acks.add(e, drop)
		return true
	}
	// Record the result with a fresh context for the same reason.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil || drop {
		aerr := o.Outbox.AckOutbox(actx, e.Key, o.Now())
		switch {
		case aerr != nil && drop:
			o.Log.Error("outbox: drop failed", attrs("err", aerr)...)
		case aerr != nil:
			o.Log.Error("outbox: sent but not acknowledged; it will be sent again", attrs("err", aerr)...)
		case !drop:
			o.Log.Info("mail sent", attrs("to", e.To)...)
		}
		return false
	}
	delay := Backoff(e.Attempts)
	if errors.Is(err, ingest.ErrMessageNotFound) {
		// The original is moved to the processed folder just after the
		// entry is queued: look again soon.
		delay = min(delay, time.Duration(e.Attempts)*time.Second)
	}
	at := o.Now().Add(delay)
	o.Log.Warn("outbox: send failed, will retry", attrs("err", err, "retry_at", at)...)
	if rerr := o.Outbox.RetryOutbox(actx, e.Key, at, err.Error()); rerr != nil {
		o.Log.Error("outbox: reschedule failed; the lease brings it back", attrs("err", rerr)...)
	}
	return false
}

// observe tells the Observer how sending e ended (err nil: sent).
func (o *OutboxSender) observe(e store.OutboxEntry, err error) {
	switch {
	case o.Observer == nil:
	case err == nil:
		o.Observer.MailSent(e.Kind, e.Arrived, o.Now())
	default:
		o.Observer.MailFailed(e.Kind, notify.IsTemporary(err))
	}
}

// Backoff is the delay before attempt n+1 of an outgoing message: 5 s
// doubling to at most 15 min.
func Backoff(attempts int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < attempts && d < 15*time.Minute; i++ {
		d *= 2
	}
	return min(d, 15*time.Minute)
}

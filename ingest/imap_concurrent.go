package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// imapJob is one message read into memory and handed to a worker.
type imapJob struct {
	m    imapMeta
	k    imapMsgKey
	body []byte
	herr error
}

// imapRunner overlaps handlers within a pass (WithConcurrency). The session
// goroutine keeps the connection to itself: it reads each message whole,
// starts its handler once every earlier message that shares one of its keys
// is done, and moves messages as their handlers finish. Handlers never touch
// the connection.
type imapRunner struct {
	ss      *imapSession
	h       Handler
	sem     chan struct{}        // running handlers
	last    map[string]orderHold // key -> the latest job holding it
	results chan *imapJob
	// inflight jobs started and not yet settled, at most max.
	inflight, max int
	// connErr is set once the connection failed: jobs still finishing are
	// then only recorded (handled: the move is left for the next session).
	connErr error
	// barrier is the last batch handed to the batch handler (startBatch):
	// every message started after it waits until it is done.
	barrier *orderHold
	// moves are handled messages waiting to be moved together (servers with
	// MOVE): one UID MOVE per imapMoveBatch messages or per batch of the
	// pass, not one round trip per message.
	moves []imapMsgKey
}

// imapMoveBatch is the most handled messages that wait to be moved
// together.
const imapMoveBatch = 64

func newIMAPRunner(ss *imapSession, h Handler) *imapRunner {
	w := ss.s.workers
	max := 2 * w
	if ss.s.batchHandler != nil {
		// Two batches: one handled while the next is read.
		max = 2 * imapBodyBatch
	}
	return &imapRunner{
		ss: ss, h: h,
		sem:     make(chan struct{}, w),
		last:    map[string]orderHold{},
		results: make(chan *imapJob, max),
		max:     max,
	}
}

// imapBodyBatch is the most messages whose bodies one UID FETCH reads when
// handlers overlap, and imapBodyBatchBytes the most bytes they may be listed
// at in all: one round trip for a run of small messages instead of one each.
const (
	imapBodyBatch      = 32
	imapBodyBatchBytes = ConcurrentMaxBytes
)

// batchable reports whether message m is read whole and handled alongside
// others: its size is known and at most ConcurrentMaxBytes, and it is not
// to be streamed.
func (r *imapRunner) batchable(m imapMeta, k imapMsgKey) bool {
	return m.size > 0 && m.size <= ConcurrentMaxBytes && !r.ss.s.mustStream(k)
}

// submit reads message m and starts its handler. A message larger than
// ConcurrentMaxBytes (or of unknown size, or found larger than listed) is
// handled alone, streamed, after every running handler is done. It returns
// an error that ends the session.
func (r *imapRunner) submit(ctx context.Context, m imapMeta, k imapMsgKey) error {
	if !r.batchable(m, k) {
		if err := r.wait(ctx); err != nil {
			return err
		}
		return r.ss.process(ctx, r.h, m)
	}
	if err := r.slot(ctx); err != nil {
		return err
	}
	body, ok, err := r.ss.fetchBody(ctx, m, k)
	if err != nil || !ok {
		return err
	}
	return r.start(ctx, m, k, body)
}

// submitGroup reads the bodies of ms (batchable messages in UID order) with
// one UID FETCH and starts their handlers in order. A message the answer
// left out (expunged meanwhile, say) is fetched again alone, which records
// the failure if it is still missing. It returns an error that ends the
// session.
func (r *imapRunner) submitGroup(ctx context.Context, ms []imapMeta) error {
	key := func(m imapMeta) imapMsgKey { return imapMsgKey{r.ss.uidValidity, uint32(m.uid)} }
	if len(ms) == 1 {
		return r.submit(ctx, ms[0], key(ms[0]))
	}
	// The bodies are read before any slot is waited for: at most
	// imapBodyBatchBytes more than the handlers in flight hold, as listed
	// (a server that lists bodies smaller than they are can make it up to
	// imapBodyBatch × ConcurrentMaxBytes).
	bodies, ferr := r.ss.fetchBodies(ms)
	if ferr != nil {
		// The session ends, but the messages read whole before the failure
		// are handled, as they would have been one by one; their moves are
		// left for the next session.
		r.connErr = ferr
	}
	if r.ss.s.batchHandler != nil {
		return r.submitBatches(ctx, ms, bodies, ferr)
	}
	for _, m := range ms {
		if err := ctx.Err(); err != nil {
			return err // read, not handled: untouched, as if never fetched
		}
		body, ok := bodies[m.uid]
		delete(bodies, m.uid)
		var err error
		switch {
		case !ok && ferr != nil:
			return ferr // not read: the later ones wait for the next session
		case !ok:
			err = r.submit(ctx, m, key(m))
		default:
			err = r.start(ctx, m, key(m), body)
		}
		if err != nil {
			return err
		}
	}
	return ferr
}

// submitBatches hands the messages of ms read whole (bodies) to the batch
// handler, each run of consecutive ones in one call; one the answer left
// out is fetched again alone, in its place, as in submitGroup.
func (r *imapRunner) submitBatches(ctx context.Context, ms []imapMeta, bodies map[imap.UID][]byte, ferr error) error {
	key := func(m imapMeta) imapMsgKey { return imapMsgKey{r.ss.uidValidity, uint32(m.uid)} }
	var run []imapJob
	flush := func() error {
		b := run
		run = nil
		switch len(b) {
		case 0:
			return nil
		case 1:
			return r.start(ctx, b[0].m, b[0].k, b[0].body)
		}
		return r.startBatch(ctx, b)
	}
	for _, m := range ms {
		if err := ctx.Err(); err != nil {
			return err // read, not handled: untouched, as if never fetched
		}
		body, ok := bodies[m.uid]
		delete(bodies, m.uid)
		if ok {
			run = append(run, imapJob{m: m, k: key(m), body: body})
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if ferr != nil {
			return ferr // not read: the later ones wait for the next session
		}
		if err := r.submit(ctx, m, key(m)); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return ferr
}

// startBatch starts the batch handler on jobs (messages read whole, in UID
// order) once every earlier message is done with its ordered work, and
// every later message waits until the batch is done (r.barrier): a batch
// is ordered as a whole, so its messages' ordering keys are never
// computed (the header parse they take is saved).
func (r *imapRunner) startBatch(ctx context.Context, jobs []imapJob) error {
	for r.inflight > 0 && r.inflight+len(jobs) > r.max {
		if err := r.settle(ctx, <-r.results); err != nil {
			return err
		}
	}
	var before []orderHold
	seen := map[chan struct{}]bool{}
	for _, h := range r.last {
		if !seen[h.ch] {
			seen[h.ch] = true
			before = append(before, h)
		}
	}
	if r.barrier != nil {
		before = append(before, *r.barrier)
	}
	clear(r.last)
	done := make(chan struct{})
	broken := new(atomic.Bool)
	r.barrier = &orderHold{done, broken}
	r.inflight += len(jobs)
	bh := r.ss.s.batchHandler
	r.ss.s.pool.Go(func() {
		errs := make([]error, len(jobs))
		defer func() {
			for i := range jobs {
				j := &imapJob{m: jobs[i].m, k: jobs[i].k, herr: errs[i]}
				r.results <- j
			}
		}()
		defer close(done)
		intact := waitHolds(before)
		r.sem <- struct{}{}
		defer func() { <-r.sem }()
		if ctx.Err() != nil || !intact {
			broken.Store(true)
			for i := range errs {
				errs[i] = errNotBegun // shutting down: left for the next run
			}
			return
		}
		fs := make([]*Fetched, len(jobs))
		for i, j := range jobs {
			fs[i] = &Fetched{
				Mailbox:      r.ss.s.cfg.Name,
				Folder:       r.ss.s.cfg.Folder,
				UIDValidity:  j.k.uidValidity,
				UID:          j.k.uid,
				InternalDate: j.m.internalDate,
				Size:         int64(len(j.body)),
				Body:         bytes.NewReader(j.body),
				Raw:          j.body,
				Unprocessed:  r.ss.fetchedUnprocessed(j.m),
			}
		}
		// A batch that has begun finishes even when shutdown begins, as a
		// message handled alone does.
		hctx := context.WithoutCancel(ctx)
		berrs, ok := r.ss.callBatch(hctx, bh, fs)
		if ok {
			copy(errs, berrs)
			return
		}
		// The batch handler failed as a whole (it panicked): each message
		// is handled alone, in order, so that one message that makes it
		// panic holds up no other. The handler checks the processed
		// markers again (the batch may have stored some before it
		// failed). Once shutdown begins, the rest are left for the next
		// run, and so is everything ordered after them.
		for i, j := range jobs {
			if ctx.Err() != nil {
				broken.Store(true)
				for k := i; k < len(errs); k++ {
					errs[k] = errNotBegun
				}
				break
			}
			fs[i].Body = bytes.NewReader(j.body)
			fs[i].Unprocessed = false
			errs[i] = r.ss.callHandler(hctx, r.h, fs[i])
		}
	})
	return nil
}

// slot waits until fewer than max jobs are in flight, moving the messages
// of the jobs that finish.
func (r *imapRunner) slot(ctx context.Context) error {
	for r.inflight >= r.max {
		if err := r.settle(ctx, <-r.results); err != nil {
			return err
		}
	}
	return nil
}

// start starts the handler of message m, read whole into body, once every
// earlier message sharing one of its ordering keys is done.
func (r *imapRunner) start(ctx context.Context, m imapMeta, k imapMsgKey, body []byte) (err error) {
	if err := r.slot(ctx); err != nil {
		return err
	}
	keys, ok := r.keys(body, k)
	if !ok {
		// Ordered after everything before it, and everything after it
		// waits for it.
		if err := r.wait(ctx); err != nil {
			return err
		}
		defer func() {
			if werr := r.wait(ctx); err == nil {
				err = werr
			}
		}()
	}
	// A key given twice is one key, held to the end if either says so.
	merged := make([]OrderKey, 0, len(keys))
	for _, key := range keys {
		if i := slices.IndexFunc(merged, func(o OrderKey) bool { return o.Name == key.Name }); i >= 0 {
			merged[i].AtTurn = merged[i].AtTurn && key.AtTurn
			merged[i].Released = merged[i].Released && key.Released
		} else {
			merged = append(merged, key)
		}
	}
	// done is closed when the handler returns, released when it called
	// Fetched.Release or returned: the next message that shares a key waits
	// for one or the other, as this one's key says; and it waits before it
	// begins (before) or in Fetched.Turn (atTurn), as its own key says.
	// broken is set before either closes when this message was left for
	// the next run, or waited behind one that was: a later message must
	// then not do its order-sensitive work either.
	done, released := make(chan struct{}), make(chan struct{})
	broken := new(atomic.Bool)
	var before, atTurn []orderHold
	if r.barrier != nil {
		before = append(before, *r.barrier)
	}
	for _, key := range merged {
		if h, ok := r.last[key.Name]; ok {
			if key.AtTurn {
				atTurn = append(atTurn, h)
			} else {
				before = append(before, h)
			}
		}
		if key.Released {
			r.last[key.Name] = orderHold{released, broken}
		} else {
			r.last[key.Name] = orderHold{done, broken}
		}
	}
	r.inflight++
	j := &imapJob{m: m, k: k, body: body}
	r.ss.s.pool.Go(func() {
		// holding: this goroutine holds a handler slot (r.sem). Turn waits
		// without one, so that a message waiting for an earlier one never
		// keeps that one from a slot.
		holding := false
		var turnOnce, releaseOnce sync.Once
		turnErr := error(nil)
		turn := func() error {
			turnOnce.Do(func() {
				if len(atTurn) == 0 {
					return
				}
				if holding {
					<-r.sem
				}
				if !waitHolds(atTurn) {
					// An earlier message sharing a key was left for the
					// next run (shutdown): so is this one's ordered work.
					broken.Store(true)
					turnErr = ErrTurnLost
				}
				if holding {
					r.sem <- struct{}{}
				}
			})
			return turnErr
		}
		release := func() {
			releaseOnce.Do(func() {
				_ = turn() // the order holds through a message that never took its turn
				close(released)
			})
		}
		defer func() { r.results <- j }()
		defer close(done)
		defer release()
		intact := waitHolds(before)
		r.sem <- struct{}{}
		holding = true
		defer func() { <-r.sem; holding = false }()
		if ctx.Err() != nil || !intact {
			broken.Store(true)
			j.herr = errNotBegun // shutting down: left for the next run
			return
		}
		// A handler that has begun finishes even when shutdown begins
		// (the message in hand), as one handled alone would.
		j.herr = r.ss.callHandler(context.WithoutCancel(ctx), r.h, &Fetched{
			Mailbox:      r.ss.s.cfg.Name,
			Folder:       r.ss.s.cfg.Folder,
			UIDValidity:  k.uidValidity,
			UID:          k.uid,
			InternalDate: m.internalDate,
			Size:         int64(len(j.body)),
			Body:         bytes.NewReader(j.body),
			Raw:          j.body,
			Turn:         turn,
			Release:      release,
			Unprocessed:  r.ss.fetchedUnprocessed(m),
		})
		j.body = nil
	})
	return nil
}

// keys calls the Source's key function; ok is false when it panicked.
func (r *imapRunner) keys(body []byte, k imapMsgKey) (keys []OrderKey, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			r.ss.log.Error("ordering keys panicked; the message is handled alone",
				slog.Uint64("uid", uint64(k.uid)), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			keys, ok = nil, false
		}
	}()
	return r.ss.s.keys(body), true
}

// orderHold is what a job that shares a key with an earlier one waits for:
// the earlier one's done or released, and whether it was left unhandled.
type orderHold struct {
	ch     chan struct{}
	broken *atomic.Bool
}

// waitHolds waits for every hold; false when one of them was left
// unhandled (its broken flag is set before its channel closes).
func waitHolds(hs []orderHold) bool {
	intact := true
	for _, h := range hs {
		<-h.ch
		if h.broken.Load() {
			intact = false
		}
	}
	return intact
}

// ErrTurnLost is what Fetched.Turn returns when an earlier message sharing
// one of the message's ordering keys was left for the next run (the
// source is shutting down): the handler must return it (or an error
// wrapping it) without doing its order-sensitive work, and the message is
// left untouched for the next run, at no attempt.
var ErrTurnLost = errors.New("ingest: an earlier message sharing an ordering key was left for the next run")

// errNotBegun marks a job whose handler was not started because the
// session was shutting down: the message is untouched, as one never
// fetched would be, so it costs no attempt.
var errNotBegun = errors.New("not begun: shutting down")

// settle moves a finished message, or records why it stays.
func (r *imapRunner) settle(ctx context.Context, j *imapJob) error {
	r.inflight--
	if j.herr == errNotBegun || errors.Is(j.herr, ErrTurnLost) {
		return nil // untouched: left for the next run, at no attempt
	}
	if j.herr != nil {
		r.ss.handlerFailed(ctx, j.k, j.herr)
		return nil
	}
	if r.connErr != nil {
		r.ss.s.recordFailure(j.k, imapStageHandled)
		return nil
	}
	if r.ss.caps.Has(imap.CapMove) {
		r.moves = append(r.moves, j.k)
		if len(r.moves) >= imapMoveBatch {
			return r.flushMoves(ctx)
		}
		return nil
	}
	if err := r.ss.move(ctx, j.k, imapStageHandled); err != nil {
		r.connErr = err
		return err
	}
	return nil
}

// flushMoves moves the handled messages waiting to be moved. After a
// connection failure they are only recorded: the next session moves them
// (they are handled, so their handlers do not run again).
func (r *imapRunner) flushMoves(ctx context.Context) error {
	ks := r.moves
	r.moves = nil
	if len(ks) == 0 {
		return nil
	}
	if r.connErr != nil {
		for _, k := range ks {
			r.ss.s.recordFailure(k, imapStageHandled)
		}
		return nil
	}
	var err error
	if len(ks) == 1 {
		err = r.ss.move(ctx, ks[0], imapStageHandled)
	} else {
		err = r.ss.moveMany(ctx, ks)
	}
	if err != nil {
		r.connErr = err
	}
	return err
}

// wait settles every job in flight. It returns the first error that ends
// the session, after all jobs are settled.
func (r *imapRunner) wait(ctx context.Context) error {
	var first error
	for r.inflight > 0 {
		if err := r.settle(ctx, <-r.results); err != nil && first == nil {
			first = err
		}
	}
	clear(r.last)
	r.barrier = nil
	if err := r.flushMoves(ctx); err != nil && first == nil {
		first = err
	}
	return first
}

// fetchBody reads a message whole. ok is false when there was no body (the
// failure is recorded); err ends the session.
func (ss *imapSession) fetchBody(ctx context.Context, m imapMeta, k imapMsgKey) (body []byte, ok bool, err error) {
	cmd, msg, lit, err := ss.openBody(ctx, m, k)
	if lit == nil || err != nil {
		return nil, false, err
	}
	if lit.Size() > ConcurrentMaxBytes {
		// The server listed it smaller (RFC822.SIZE). Reading it whole
		// would hold as much memory as the server cares to send: the
		// session ends here (the literal is not read) and the next attempt
		// streams it.
		ss.s.recordFailure(k, imapStageNew)
		ss.s.streamNext(k)
		return nil, false, fmt.Errorf("uid %d: body of %d bytes, listed as %d: streamed on the next attempt", k.uid, lit.Size(), m.size)
	}
	r := &imapBody{r: lit, size: lit.Size()}
	var buf bytes.Buffer
	buf.Grow(int(lit.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(r); err != nil {
		// A body cut short: the connection is gone (the literal is not
		// read further: the client has moved past it).
		ss.s.recordFailure(k, imapStageNew)
		return nil, false, fmt.Errorf("uid %d: %w", k.uid, err)
	}
	if cerr := ss.finishFetch(k, cmd, msg); cerr != nil {
		ss.s.recordFailure(k, imapStageNew)
		return nil, false, cerr
	}
	return buf.Bytes(), true, nil
}

// fetchBodies reads the bodies of ms, each whole, with one UID FETCH. A
// message the answer leaves out is missing from the map (the caller fetches
// it alone). err ends the session: the connection failed, or a body came
// larger than ConcurrentMaxBytes (it is then streamed on the next attempt,
// as in fetchBody); the map then holds the bodies read whole before.
func (ss *imapSession) fetchBodies(ms []imapMeta) (map[imap.UID][]byte, error) {
	uids := make([]imap.UID, len(ms))
	asked := make(map[imap.UID]bool, len(ms))
	for i, m := range ms {
		uids[i] = m.uid
		asked[m.uid] = true
	}
	bodies := make(map[imap.UID][]byte, len(ms))
	// blame is the message being read when the session failed (every
	// message of the batch when its UID was not known yet): a failure is
	// recorded for it, and with tooBig (a body larger than allowed) it is
	// streamed on the next attempt.
	var blame []imap.UID
	tooBig := false
	culprit := func(uid imap.UID) []imap.UID {
		if uid != 0 {
			return []imap.UID{uid}
		}
		var unread []imap.UID // not the ones read whole: they are handled
		for _, u := range uids {
			if _, ok := bodies[u]; !ok {
				unread = append(unread, u)
			}
		}
		return unread
	}
	err := ss.guard("fetch bodies", func() error {
		cmd := ss.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			var uid imap.UID
			var body []byte
			// The literal must be consumed before the next Next() (#667).
			for item := msg.Next(); item != nil; item = msg.Next() {
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataBodySection:
					if it.Literal == nil {
						continue
					}
					if it.Literal.Size() > ConcurrentMaxBytes {
						// Listed smaller: not read (the session ends).
						blame, tooBig = culprit(uid), true
						return fmt.Errorf("uid %d: body of %d bytes, listed at most %d: streamed on the next attempt",
							uid, it.Literal.Size(), int64(ConcurrentMaxBytes))
					}
					var buf bytes.Buffer
					buf.Grow(int(it.Literal.Size()) + bytes.MinRead)
					if _, err := buf.ReadFrom(&imapBody{r: it.Literal, size: it.Literal.Size()}); err != nil {
						blame = culprit(uid)
						return fmt.Errorf("uid %d: %w", uid, err) // the connection is gone
					}
					body = buf.Bytes()
				}
			}
			if uid != 0 && body != nil && asked[uid] {
				bodies[uid] = body
			}
		}
		return cmd.Close()
	})
	if ie, failed := imapCommandFailed(err); failed && blame == nil {
		// NO or BAD (a message expunged meanwhile, say): the bodies read
		// are whole; the rest are fetched alone.
		ss.log.Warn("imap fetch completed with an error", slog.Int("messages", len(ms)), slog.Any("err", ie))
		return bodies, nil
	}
	if err != nil {
		for _, u := range blame {
			k := imapMsgKey{ss.uidValidity, uint32(u)}
			ss.s.recordFailure(k, imapStageNew)
			if tooBig {
				ss.s.streamNext(k)
			}
		}
		return bodies, err
	}
	return bodies, nil
}

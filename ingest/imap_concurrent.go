package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/emersion/go-imap/v2"
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
	sem     chan struct{}            // running handlers
	last    map[string]chan struct{} // key -> done of the latest job holding it
	results chan *imapJob
	// inflight jobs started and not yet settled, at most max.
	inflight, max int
	// connErr is set once the connection failed: jobs still finishing are
	// then only recorded (handled: the move is left for the next session).
	connErr error
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
	return &imapRunner{
		ss: ss, h: h,
		sem:     make(chan struct{}, w),
		last:    map[string]chan struct{}{},
		results: make(chan *imapJob, 2*w),
		max:     2 * w,
	}
}

// submit reads message m and starts its handler. A message larger than
// ConcurrentMaxBytes (or of unknown size, or found larger than listed) is
// handled alone, streamed, after every running handler is done. It returns
// an error that ends the session.
func (r *imapRunner) submit(ctx context.Context, m imapMeta, k imapMsgKey) (err error) {
	if m.size <= 0 || m.size > ConcurrentMaxBytes || r.ss.s.mustStream(k) {
		if err := r.wait(ctx); err != nil {
			return err
		}
		return r.ss.process(ctx, r.h, m)
	}
	for r.inflight >= r.max {
		if err := r.settle(ctx, <-r.results); err != nil {
			return err
		}
	}
	body, ok, err := r.ss.fetchBody(ctx, m, k)
	if err != nil || !ok {
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
	var before []chan struct{}
	done := make(chan struct{})
	for _, key := range keys {
		if c, ok := r.last[key]; ok && c != done { // a key given twice is one key
			before = append(before, c)
		}
		r.last[key] = done
	}
	r.inflight++
	j := &imapJob{m: m, k: k, body: body}
	go func() {
		defer func() { r.results <- j }()
		defer close(done)
		for _, c := range before {
			<-c
		}
		r.sem <- struct{}{}
		defer func() { <-r.sem }()
		if ctx.Err() != nil {
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
		})
		j.body = nil
	}()
	return nil
}

// keys calls the Source's key function; ok is false when it panicked.
func (r *imapRunner) keys(body []byte, k imapMsgKey) (keys []string, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			r.ss.log.Error("ordering keys panicked; the message is handled alone",
				slog.Uint64("uid", uint64(k.uid)), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			keys, ok = nil, false
		}
	}()
	return r.ss.s.keys(body), true
}

// errNotBegun marks a job whose handler was not started because the
// session was shutting down: the message is untouched, as one never
// fetched would be, so it costs no attempt.
var errNotBegun = errors.New("not begun: shutting down")

// settle moves a finished message, or records why it stays.
func (r *imapRunner) settle(ctx context.Context, j *imapJob) error {
	r.inflight--
	if j.herr == errNotBegun {
		return nil
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

package lmtp

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// persistentFilingFailure is the attempt count from which a copy that keeps
// failing is logged at error level.
const persistentFilingFailure = 5

// filing is one copy waiting to be filed into the processed folder.
type filing struct {
	raw       []byte
	arrival   time.Time
	messageID string
	attempts  int
	next      time.Time
}

// fileQueue holds the copies waiting to be filed, in arrival order. Only the
// head is retried: while it fails, the mailbox is presumed unavailable.
type fileQueue struct {
	mu       sync.Mutex
	items    []*filing
	bytes    int64
	maxBytes int64
	kick     chan struct{}

	filed, failures, dropped uint64
}

func newFileQueue(maxBytes int64) *fileQueue {
	return &fileQueue{maxBytes: maxBytes, kick: make(chan struct{}, 1)}
}

// empty reports whether no copy is waiting.
func (q *fileQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0
}

// push queues f; it refuses when the queue would exceed its byte bound (an
// empty queue always takes one copy).
func (q *fileQueue) push(f *filing) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := int64(len(f.raw))
	if len(q.items) > 0 && q.bytes+n > q.maxBytes {
		return false
	}
	q.items = append(q.items, f)
	q.bytes += n
	select {
	case q.kick <- struct{}{}:
	default:
	}
	return true
}

// head returns the oldest copy, or nil.
func (q *fileQueue) head() *filing {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	return q.items[0]
}

// popHead removes f, which must be the head.
func (q *fileQueue) popHead(f *filing) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 && q.items[0] == f {
		q.items[0] = nil
		q.items = q.items[1:]
		q.bytes -= int64(len(f.raw))
	}
}

// drain removes and returns every waiting copy.
func (q *fileQueue) drain() []*filing {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items, q.bytes = nil, 0
	return out
}

// retryAt reports when the head is due.
func (q *fileQueue) retryAt() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return q.items[0].next, true
}

func (q *fileQueue) count(filed, failed, dropped int) {
	q.mu.Lock()
	q.filed += uint64(filed)
	q.failures += uint64(failed)
	q.dropped += uint64(dropped)
	q.mu.Unlock()
}

func (q *fileQueue) stats(st *Stats) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st.Filed, st.FilingFailures, st.FilingDropped = q.filed, q.failures, q.dropped
	st.FilingPending, st.FilingPendingBytes = len(q.items), q.bytes
}

// filingTimeout bounds one APPEND attempt: Config.FilingTimeout plus a
// second per MiB, so that a large message is not cut short on a slow link.
func (s *Server) filingTimeout(size int) time.Duration {
	return s.cfg.FilingTimeout + time.Duration(size>>20)*time.Second
}

// file files a handled message into the processed folder, or queues it for
// another attempt. It returns false only when the queue is full: the message
// must then be answered 451 (its ticket is stored; the mail server's retry
// gives the copy another chance).
func (s *Server) file(ctx context.Context, raw []byte, arrival time.Time, mid string, log *slog.Logger) bool {
	if s.queue.empty() {
		fctx, cancel := context.WithTimeout(ctx, s.filingTimeout(len(raw)))
		err := s.app.Append(fctx, raw, arrival)
		cancel()
		if err == nil {
			s.queue.count(1, 0, 0)
			return true
		}
		s.queue.count(0, 1, 0)
		log.Warn("lmtp: filing into the processed folder failed; the ticket is stored, the copy waits in memory for another attempt", "error", err)
	}
	f := &filing{raw: raw, arrival: arrival, messageID: mid, next: s.now()}
	if s.queue.push(f) {
		return true
	}
	log.Error("lmtp: too many copies wait to be filed into the processed folder; answered 451 so that the mail server keeps the message",
		"queue_bytes_max", s.cfg.FilingQueueBytes)
	return false
}

// retryLoop files the waiting copies until ctx is done.
func (s *Server) retryLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.retryDue(ctx)
		wait := time.Hour
		if at, ok := s.queue.retryAt(); ok {
			wait = max(at.Sub(s.now()), 0)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.queue.kick:
		case <-t.C:
		}
	}
}

// retryDue files copies from the head of the queue while they are due and
// succeed.
func (s *Server) retryDue(ctx context.Context) {
	for ctx.Err() == nil {
		f := s.queue.head()
		if f == nil || f.next.After(s.now()) {
			return
		}
		if !s.retryOne(ctx, f) {
			return
		}
	}
}

// retryOne makes one attempt to file the head f, and on failure schedules
// the next.
func (s *Server) retryOne(ctx context.Context, f *filing) bool {
	fctx, cancel := context.WithTimeout(ctx, s.filingTimeout(len(f.raw)))
	err := s.app.Append(fctx, f.raw, f.arrival)
	cancel()
	f.attempts++
	log := s.log.With("message_id", f.messageID, "received", f.arrival, "attempts", f.attempts)
	if err == nil {
		s.queue.popHead(f)
		s.queue.count(1, 0, 0)
		log.Info("lmtp: filed a waiting copy into the processed folder")
		return true
	}
	s.queue.count(0, 1, 0)
	if ctx.Err() != nil {
		return false // stopping: flushQueue makes the last attempt
	}
	d := backoff(s.cfg.RetryMin, s.cfg.RetryMax, f.attempts)
	f.next = s.now().Add(d)
	level := slog.LevelWarn
	if f.attempts >= persistentFilingFailure {
		level = slog.LevelError
	}
	log.Log(ctx, level, "lmtp: filing into the processed folder failed again", "error", err, "retry_in", d)
	return false
}

// flushQueue makes a last attempt, until deadline (but at least a few
// seconds), to file the waiting copies, then gives up on the rest, logging
// each.
func (s *Server) flushQueue(deadline time.Time) {
	if s.queue.empty() {
		return
	}
	deadline = later(deadline, s.now().Add(5*time.Second))
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for ctx.Err() == nil {
		f := s.queue.head()
		if f == nil {
			return
		}
		if !s.retryOne(ctx, f) {
			break
		}
	}
	lost := s.queue.drain()
	s.queue.count(0, 0, len(lost))
	for _, f := range lost {
		s.log.Error("lmtp: stopping with a copy not filed into the processed folder; its ticket is stored, the mailbox lacks the message",
			"message_id", f.messageID, "received", f.arrival, "size", len(f.raw), "attempts", f.attempts)
	}
}

// backoff is the delay before attempt n+1: exponential from minD, capped at
// maxD, with ±20 % jitter.
func backoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	j := time.Duration(float64(d) * (rand.Float64()*0.4 - 0.2))
	return max(d+j, minD/2)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

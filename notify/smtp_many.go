package notify

import (
	"context"
	"time"
)

// Outgoing is one message of SendMany: as Send's arguments.
type Outgoing struct {
	Env Envelope
	Raw []byte
}

// SendMany delivers msgs on one session and returns each one's error, as
// Send would have. Where the server offers CHUNKING and PIPELINING, every
// transaction (envelope, "BDAT <size> LAST" and the message) goes out in
// one write and the replies are read after it: one round trip for all of
// them (RFC 2920 lets a client pipeline whole transactions, and RFC 3030
// has a server refuse the chunk of a transaction whose envelope failed
// and read past it, so the session stays in step). Elsewhere, or for a
// message that cannot go out as one chunk, they are sent one after
// another with Send.
//
// A pooled session found gone before any reply is replaced and the
// messages sent again, as Send does for one. When the session fails after
// some replies, the messages whose replies were all read have their
// outcome; the others get the session's error (temporary: the outbox tries
// them again, at least once, as after any lost reply).
func (s *Sender) SendMany(ctx context.Context, msgs []Outgoing) []error {
	errs := make([]error, len(msgs))
	var batch []int // the messages that go out pipelined
	for i, m := range msgs {
		if err := smtpCheckEnvelope(m.Env, m.Raw); err != nil {
			errs[i] = &SendError{Op: "envelope", Err: err}
			continue
		}
		if smtpCheckRcpts(m.Env.To) != nil || !smtpChunkable(m.Raw) {
			errs[i] = s.Send(ctx, m.Env, m.Raw)
			continue
		}
		batch = append(batch, i)
	}
	switch len(batch) {
	case 0:
		return errs
	case 1:
		i := batch[0]
		errs[i] = s.Send(ctx, msgs[i].Env, msgs[i].Raw)
		return errs
	}
	if err := s.acquire(ctx); err != nil {
		for _, i := range batch {
			errs[i] = err
		}
		return errs
	}
	// The configured timeout is per message: each message's replies get
	// it (transactMany), so a relay that takes its time over each (a
	// content scan) does not see the later ones cut short and sent again,
	// while one that goes silent fails the batch after one timeout; the
	// whole call is capped at one timeout per message.
	tctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout*time.Duration(len(batch)))
	chunked := s.sendPipelined(tctx, msgs, batch, errs)
	cancel()
	s.release()
	if !chunked {
		for _, i := range batch {
			errs[i] = s.Send(ctx, msgs[i].Env, msgs[i].Raw)
		}
	}
	return errs
}

// sendPipelined sends the messages batch names on one session, each
// transaction pipelined after the other, and sets their errors. It reports
// false, having sent nothing, when the session cannot take chunks.
func (s *Sender) sendPipelined(ctx context.Context, msgs []Outgoing, batch []int, errs []error) bool {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		for _, i := range batch {
			errs[i] = nil // an attempt's outcome replaces the last one's
		}
		conn, reused, err := s.get(ctx)
		if err != nil {
			for _, i := range batch {
				errs[i] = err
			}
			return true
		}
		if !conn.c.canChunk() {
			s.put(conn)
			return false
		}
		first, taken, healthy := s.transactMany(ctx, conn, msgs, batch, errs)
		if healthy {
			s.put(conn)
			s.log.Debug("smtp sent pipelined", "messages", len(batch), "reused", reused, "duration", time.Since(start))
			return true
		}
		s.discard(conn)
		// As Send: a pooled session that the server had dropped (no
		// reply, or 421 to the first MAIL) took nothing; the messages go
		// out on a fresh one.
		if reused && attempt == 0 && !taken && first >= 0 && ctx.Err() == nil && smtpStaleSession(errs[first]) {
			s.log.Debug("smtp: pooled session is gone, redialling", "err", errs[first])
			continue
		}
		return true
	}
}

// transactMany writes every transaction of batch on conn in one write and
// reads their replies in order. first is the first message written (-1:
// none); taken reports that the server accepted the MAIL of any message
// (which it may then have taken, although its other replies were lost);
// healthy that the session ended every transaction in step and did not
// announce its end (421): it may be pooled again.
func (s *Sender) transactMany(ctx context.Context, conn *smtpConn, msgs []Outgoing, batch []int, errs []error) (first int, taken, healthy bool) {
	stop := context.AfterFunc(ctx, func() { _ = conn.nc.Close() })
	defer func() {
		if !stop() {
			conn.closed = true // ctx ended meanwhile and closed the socket
		}
	}()
	c := conn.c
	sent := batch[:0:0]
	for _, i := range batch {
		env := msgs[i].Env
		mail, err := c.mailLine(env.From, int64(len(msgs[i].Raw)), !smtpASCII(env.From) || !smtpAllASCII(env.To))
		if err != nil {
			errs[i] = s.wrap(ctx, "mail", "", err)
			continue
		}
		c.writeChunk(mail, env.To, msgs[i].Raw)
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return -1, false, true
	}
	first = sent[0]
	if err := c.w.Flush(); err != nil {
		for _, i := range sent {
			errs[i] = s.wrap(ctx, "mail", "", err)
		}
		return first, false, false
	}
	smtpQuickAck(c.conn) // as in chunk
	healthy = true
	defer func() { _ = conn.nc.SetReadDeadline(time.Time{}) }()
	for k, i := range sent {
		env := msgs[i].Env
		_ = conn.nc.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
		r, _, err := c.chunkReplies(env.To)
		if r.mail == nil && (err == nil || r.Op != "mail") {
			taken = true // MAIL accepted
		}
		if smtpAnnouncesEnd(r) {
			healthy = false // the server is closing the session
		}
		if err != nil {
			// The session failed: this message and the ones after it have
			// no outcome (a reply may be lost: the server may hold them).
			for _, j := range sent[k:] {
				errs[j] = s.wrap(ctx, r.Op, r.Rcpt, err)
			}
			return first, taken, false
		}
		delivered, failed, err := s.envelopeOutcome(ctx, env, r)
		switch {
		case err != nil:
			errs[i] = err
		case len(failed) > 0:
			errs[i] = &RecipientError{Delivered: delivered, Failed: failed}
		}
	}
	return first, taken, healthy
}

// smtpAnnouncesEnd reports whether a transaction's replies include 421:
// the server is closing the session, which must not be pooled again.
func smtpAnnouncesEnd(r smtpEnvelopeReplies) bool {
	if smtpReplyCode(r.mail) == 421 || smtpReplyCode(r.data) == 421 {
		return true
	}
	for _, err := range r.rcpt {
		if smtpReplyCode(err) == 421 {
			return true
		}
	}
	return false
}

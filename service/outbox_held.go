package service

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/northwind-it/ticketgw/store"
)

// The outbox sender's copy of the mail this instance has just queued. Every
// mail is stored in Redis before it is sent, and the sender used to read it
// back whole when it claimed the entry: for a forward, the customer's whole
// message, a second time through Redis and the network within the same
// millisecond. Now the pipeline hands the bytes it queued to the sender
// (Hold), the sender claims entries without their bytes (ClaimOutboxMeta)
// and reads from Redis only those it does not hold (OutboxRaw): mail queued
// by another instance, before a restart, by the SLA timers, or beyond the
// held bytes' cap. What is sent is the same bytes either way: only an entry
// its commit added is held, and a held copy is used only when it is younger
// than heldMailAge and its length and CRC-32C are those the claimed entry
// records (after a loss of Redis's data, the same key may name another
// message).

// heldMailMax caps the bytes held; beyond it, mail is read back from Redis.
const heldMailMax = 4 << 20

// heldMailAge is how long an entry not claimed (another instance claimed
// it, or it was claimed before it was held) stays held, and how old a held
// copy may be when used.
const heldMailAge = time.Minute

// rawlessOutbox is an Outbox that can claim entries without their message
// bytes and read the bytes of some (implemented by *store.Store).
type rawlessOutbox interface {
	ClaimOutboxMeta(ctx context.Context, now time.Time, lease time.Duration, max int) ([]store.OutboxEntry, error)
	OutboxRaw(ctx context.Context, keys []string) (raws [][]byte, queued []bool, err error)
}

// heldMail is the sender's in-memory copy of recently queued mail.
type heldMail struct {
	mu      sync.Mutex
	m       map[string]heldRaw
	bytes   int       // the held slices' capacities
	evicted time.Time // the last sweep for old entries
}

type heldRaw struct {
	raw []byte
	at  time.Time
}

// Hold gives the sender the bytes of the entries a commit queued (added
// reports which were added; an entry already queued keeps its stored
// bytes). The pipeline calls it after the commit; the sender uses the bytes
// instead of reading them back when it claims the entry. It never blocks on
// I/O.
func (o *OutboxSender) Hold(entries []store.OutboxEntry, added []bool) {
	o.init()
	if _, ok := o.Outbox.(rawlessOutbox); !ok {
		return
	}
	now := o.Now()
	h := &o.held
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Sub(h.evicted) > heldMailAge/4 {
		h.evict(now)
	}
	for i, e := range entries {
		// The slice's capacity is what holding it keeps from the
		// collector.
		size := cap(e.Raw)
		if i >= len(added) || !added[i] || len(e.Raw) == 0 || size > heldMailMax/4 {
			continue
		}
		if h.bytes+size > heldMailMax {
			h.evict(now)
			if h.bytes+size > heldMailMax {
				continue // read back from Redis when claimed
			}
		}
		if h.m == nil {
			h.m = make(map[string]heldRaw)
		}
		if old, ok := h.m[e.Key]; ok {
			h.bytes -= cap(old.raw)
		}
		h.m[e.Key] = heldRaw{raw: e.Raw, at: now}
		h.bytes += size
	}
}

// evict drops entries held longer than heldMailAge.
func (h *heldMail) evict(now time.Time) {
	h.evicted = now
	for k, v := range h.m {
		if now.Sub(v.at) > heldMailAge {
			delete(h.m, k)
			h.bytes -= cap(v.raw)
		}
	}
}

// take returns and forgets the bytes held for e, if they are recent and
// are the bytes e records (its length and checksum).
func (h *heldMail) take(e store.OutboxEntry, now time.Time) ([]byte, bool) {
	h.mu.Lock()
	v, ok := h.m[e.Key]
	if ok {
		delete(h.m, e.Key)
		h.bytes -= cap(v.raw)
	}
	h.mu.Unlock()
	if !ok || now.Sub(v.at) > heldMailAge || e.RawLen == 0 || len(v.raw) != e.RawLen || store.RawSum(v.raw) != e.RawSum {
		return nil, false
	}
	return v.raw, true
}

// forget drops what is held for key (its entry was sent, or dropped).
func (h *heldMail) forget(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.m[key]; ok {
		delete(h.m, key)
		h.bytes -= cap(v.raw)
	}
}

// usesRaw reports whether sending e uses e.Raw (rather than composing it
// from the message it refers to).
func usesRaw(e store.OutboxEntry) bool { return e.Ref == nil || len(e.Recipe) == 0 }

// claim acknowledges carry and claims a batch of up to size entries. With a rawlessOutbox,
// entries get their bytes from what is held, and the rest from one read;
// with an ackClaimer, carry is acknowledged in the claim's round trip.
// claimed counts the entries claimed, those dropped meanwhile (acknowledged
// by another instance) included: a full batch means more may be due.
func (o *OutboxSender) claim(ctx context.Context, carry []pendingAck, size int) (entries []store.OutboxEntry, claimed int, err error) {
	ro, ok := o.Outbox.(rawlessOutbox)
	ac, canAckClaim := o.Outbox.(ackClaimer)
	if !ok || !canAckClaim {
		o.ackBatch(ctx, carry)
	}
	if !ok {
		entries, err := o.Outbox.ClaimOutbox(ctx, o.Now(), o.Lease, size)
		return entries, len(entries), err
	}
	if canAckClaim && len(carry) > 0 {
		entries, err = ac.AckClaimOutboxMeta(ctx, ackKeys(carry), o.Now(), o.Lease, size)
		if err != nil {
			// Maybe not acknowledged: try that alone (logging how it
			// ended) before the leases of what was sent run out.
			o.ackBatch(ctx, carry)
		} else {
			o.logAcked(carry, nil)
		}
	} else {
		entries, err = ro.ClaimOutboxMeta(ctx, o.Now(), o.Lease, size)
	}
	if err != nil || len(entries) == 0 {
		return entries, len(entries), err
	}
	claimed = len(entries)
	var missing []int
	now := o.Now()
	for i := range entries {
		e := &entries[i]
		if !usesRaw(*e) || len(e.Raw) > 0 {
			continue
		}
		if raw, ok := o.held.take(*e, now); ok {
			e.Raw = raw
		} else {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return entries, claimed, nil
	}
	keys := make([]string, len(missing))
	for j, i := range missing {
		keys[j] = entries[i].Key
	}
	raws, queued, err := ro.OutboxRaw(ctx, keys)
	if err != nil {
		// Claimed but unreadable: give the batch back for the next claim.
		o.giveBack(ctx, entries)
		return nil, 0, fmt.Errorf("claim mail: %w", err)
	}
	gone := make(map[string]bool)
	for j, i := range missing {
		e := &entries[i]
		e.Raw = raws[j]
		switch {
		case !queued[j]:
			// Acknowledged since the claim (by an instance whose lease
			// had lapsed): there is nothing to send.
			gone[e.Key] = true
		case e.RawLen > 0 && e.Raw != nil && (len(e.Raw) != e.RawLen || store.RawSum(e.Raw) != e.RawSum):
			// Acknowledged and queued again meanwhile, with other bytes:
			// the new entry is claimed on its own.
			gone[e.Key] = true
		}
		// Stored bytes that are missing while the entry is queued (lost):
		// sent as before, the empty message fails and is given up after
		// MaxAttempts, with an error in the log.
	}
	if len(gone) > 0 {
		entries = slices.DeleteFunc(entries, func(e store.OutboxEntry) bool { return gone[e.Key] })
	}
	return entries, claimed, nil
}

package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

// Timer kinds.
const (
	ResponseWarn     = "response-warn"
	ResponseBreach   = "response-breach"
	ResolutionWarn   = "resolution-warn"
	ResolutionBreach = "resolution-breach"
)

// TimerKinds lists every timer kind.
var TimerKinds = []string{ResponseWarn, ResponseBreach, ResolutionWarn, ResolutionBreach}

func validKind(k string) bool { return slices.Contains(TimerKinds, k) }

// Timer is one SLA timer of a ticket.
type Timer struct {
	Kind string // ResponseWarn, ResponseBreach, ResolutionWarn or ResolutionBreach
	Due  time.Time
}

// IMAC over-quota policies, as in the contract configuration, and the
// staff-forced placement.
const (
	PolicyNextMonth = "next_month" // skip to the first later month with quota and capacity
	PolicyBillable  = "billable"   // keep the first day with capacity, billable when over quota
	PolicyForce     = "force"      // the first candidate, whatever the capacity (a staff #schedule)
)

// IMACRequest asks for an IMAC slot.
type IMACRequest struct {
	// Candidates are the possible service days in order of preference,
	// enough of them to cover more than twelve months.
	Candidates   []sla.Date
	MonthlyQuota int // 0: unlimited
	PerVisit     int // 0: unlimited
	Policy       string
}

func (r *IMACRequest) validate() error {
	if len(r.Candidates) == 0 {
		return errors.New("imac request without candidates")
	}
	if r.MonthlyQuota < 0 || r.PerVisit < 0 {
		return errors.New("imac request with negative quota")
	}
	switch r.Policy {
	case PolicyNextMonth, PolicyBillable, PolicyForce:
	default:
		return fmt.Errorf("imac request with unknown policy %q", r.Policy)
	}
	for _, d := range r.Candidates {
		if !validDate(d) {
			return fmt.Errorf("imac request with invalid date %v", d)
		}
	}
	return nil
}

// ErrNoIMACSlot is returned when no candidate day of an IMACRequest has
// quota and capacity left.
var ErrNoIMACSlot = errors.New("no imac slot")

// NewTicket is what CreateTicket stores.
type NewTicket struct {
	// Ticket is stored as given, except ID (allocated) and, when IMAC is
	// set, the IMAC fields (decided by the reservation). Contract is "" for
	// unknown senders.
	Ticket domain.Ticket
	// Prefix of the ticket id ("ACME" gives ACME-0001); DefaultPrefix when
	// empty and the ticket has no contract.
	Prefix string
	// DedupKey identifies the message ("mid:<message-id>" or
	// "sha256:<hex of the raw message>"): a second CreateTicket with the
	// same key returns the first ticket and changes nothing.
	DedupKey string
	Event    domain.Event // the "opened" event
	Timers   []Timer
	IMAC     *IMACRequest // nil unless the ticket is an IMAC with a plan
}

// CreateTicket stores a new ticket in one atomic step: the dedup check, the
// id, the IMAC reservation, the ticket, its opened event, its timers and the
// dedup key. When the dedup key was seen before it returns the existing
// ticket and created=false. It returns ErrNoIMACSlot (wrapped) when no
// candidate day fits; nothing is stored then.
func (s *Store) CreateTicket(ctx context.Context, nt NewTicket) (t domain.Ticket, created bool, err error) {
	t, created, _, err = s.CreateTicketAck(ctx, nt, nil)
	return t, created, err
}

// AckLimit asks CreateTicketAck to apply the per-sender acknowledgement
// rate limit as AllowAck(Sender, MsgKey, At, Limit, Window) would.
type AckLimit struct {
	Sender, MsgKey string
	At             time.Time
	Limit          int
	Window         time.Duration
}

// CreateTicketAck is CreateTicket and, with ack, AllowAck, in one round
// trip once the ticket's prefix is known to belong to its contract (the
// first ticket of a prefix in a process claims it first, a round trip of
// its own). The prefix is claimed again in the same round trip, so that
// Redis keeps the record should it have lost it (on a Cluster the
// pipeline's commands run on their nodes in no set order: each is
// idempotent, and the claim only confirms what this Store saw). allowed is AllowAck's
// answer (false without ack), and is counted even when the ticket is not
// created: asking again for the same message gives the same answer.
func (s *Store) CreateTicketAck(ctx context.Context, nt NewTicket, ack *AckLimit) (t domain.Ticket, created, allowed bool, err error) {
	r := s.CreateTicketAcks(ctx, []TicketAck{{Ticket: nt, Ack: ack}})[0]
	return r.Ticket, r.Created, r.Allowed, r.Err
}

// TicketAck is one request of CreateTicketAcks: a ticket to create and,
// with Ack, the sender's acknowledgement to count.
type TicketAck struct {
	Ticket NewTicket
	Ack    *AckLimit
}

// TicketAckResult is what CreateTicketAck returns for one TicketAck.
type TicketAckResult struct {
	Ticket           domain.Ticket
	Created, Allowed bool
	Err              error
}

// CreateTicketAcks is CreateTicketAck for each request, in order, in one
// round trip for all of them (once their prefixes are known to belong to
// their contracts, as in CreateTicketAck): Redis runs the requests'
// scripts one after another as listed, so tickets are numbered, IMAC
// places reserved and acknowledgements counted in the order of reqs, as
// if each were created alone in turn. A request that fails (an invalid
// one, a script error) fails alone; an error of the connection fails
// every request it left without an answer.
func (s *Store) CreateTicketAcks(ctx context.Context, reqs []TicketAck) []TicketAckResult {
	out := make([]TicketAckResult, len(reqs))
	preps := make([]*createPrep, len(reqs))
	n := 0
	for i, r := range reqs {
		if preps[i], out[i].Err = s.prepareCreate(ctx, r.Ticket, r.Ack); preps[i] != nil {
			n++
		}
	}
	if n == 0 {
		return out
	}
	// One pipeline of EVALSHAs. A script Redis does not have (NOSCRIPT:
	// it restarted) ran nothing, and is run again with EVAL, which loads it.
	// With several requests, the first call of a script on a key is an EVAL:
	// were it an EVALSHA that met NOSCRIPT, a later request's call on the
	// same key could run first (another client may load the script
	// meanwhile) and take the earlier one's number or IMAC place.
	first := map[[2]string]bool{}
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, pr := range preps {
			if pr == nil {
				continue
			}
			for _, c := range pr.calls() {
				k := [2]string{c.script.Hash(), c.keys[0]}
				if n > 1 && !first[k] {
					first[k] = true
					c.cmd = c.script.Eval(ctx, p, c.keys, c.args...)
					continue
				}
				c.cmd = c.script.EvalSha(ctx, p, c.keys, c.args...)
			}
		}
		return nil
	})
	for i, pr := range preps {
		if pr == nil {
			continue
		}
		for _, c := range pr.calls() {
			if redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
				c.cmd = c.script.Eval(ctx, s.rdb, c.keys, c.args...)
			}
		}
		out[i] = s.finishCreate(pr)
	}
	return out
}

// scriptCall is one script of a pipeline and its answer.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

// createPrep is a validated CreateTicketAck request: its scripts (the
// prefix's claim, the creation, the rate limit) and what reading their
// answers needs.
type createPrep struct {
	nt                   NewTicket
	ack                  *AckLimit
	prefix, contract     string
	owner                []byte
	claim, create, limit *scriptCall
	// stored is the ticket as sent to the script (no id; no IMAC fields
	// when it reserves a place): with the members the script adds, the
	// ticket it stores.
	stored domain.Ticket
	// exact: stored encodes to the JSON sent (no string was changed).
	exact bool
}

func (pr *createPrep) calls() []*scriptCall {
	cs := make([]*scriptCall, 0, 3)
	for _, c := range []*scriptCall{pr.claim, pr.create, pr.limit} {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// prepareCreate validates a CreateTicketAck request, claims its prefix
// first when this Store has not seen it claimed (a round trip of its own),
// and builds its scripts.
func (s *Store) prepareCreate(ctx context.Context, nt NewTicket, ack *AckLimit) (*createPrep, error) {
	contract := nt.Ticket.Contract
	prefix := nt.Prefix
	if prefix == "" && contract == "" {
		prefix = DefaultPrefix
	}
	switch {
	case contract == unknownContract:
		return nil, fmt.Errorf("create ticket: contract id %q is reserved", contract)
	case !ValidPrefix(prefix):
		return nil, fmt.Errorf("create ticket: invalid ticket prefix %q", prefix)
	case nt.DedupKey == "":
		return nil, errors.New("create ticket: empty dedup key")
	case ack != nil && (ack.Limit <= 0 || ack.Window < time.Millisecond || ack.MsgKey == ""):
		return nil, fmt.Errorf("rate limit %s: invalid limit %d, window %v or empty message key", ack.Sender, ack.Limit, ack.Window)
	}
	for _, tm := range nt.Timers {
		if !validKind(tm.Kind) || tm.Due.IsZero() {
			return nil, fmt.Errorf("create ticket: invalid timer %q at %v", tm.Kind, tm.Due)
		}
	}
	if nt.IMAC != nil {
		if err := nt.IMAC.validate(); err != nil {
			return nil, fmt.Errorf("create ticket: %w", err)
		}
	}
	// A prefix this Store has not seen claimed by the contract is claimed
	// before anything is stored under it.
	known := s.knownOwner(prefix, contract)
	if !known {
		if err := s.claimPrefix(ctx, prefix, contract); err != nil {
			return nil, fmt.Errorf("create ticket: %w", err)
		}
	}

	tk := nt.Ticket
	tk.ID = ""
	if nt.IMAC != nil {
		clearIMAC(&tk)
	}
	body, err := jsonMembers(tk, "id")
	if err != nil {
		return nil, fmt.Errorf("create ticket: %w", err)
	}
	ev, err := json.Marshal(nt.Event)
	if err != nil {
		return nil, fmt.Errorf("create ticket: encode event: %w", err)
	}

	reserve := ""
	if nt.IMAC != nil {
		reserve = "1"
	}
	quota, per, policy := imacParams(nt.IMAC)
	args := []any{nt.DedupKey, prefix, body, ev, reserve, quota, per, policy, len(nt.Timers), imacCandidates(nt.IMAC)}
	for _, tm := range nt.Timers {
		args = append(args, tm.Kind, ms(tm.Due))
	}
	args = appendCandidates(args, nt.IMAC)
	k := []string{s.k.seq(contract), s.k.tickets(contract), s.k.events(contract), s.k.dedup(contract), s.k.timers(contract), s.k.imac(contract)}

	// json.Marshal writes a string's invalid UTF-8 as \ufffd: the ticket
	// stored then differs from the one sent, and is decoded back.
	pr := &createPrep{nt: nt, ack: ack, prefix: prefix, contract: contract, stored: tk, exact: !strings.Contains(body, `\ufffd`)}
	if known {
		var up string
		if up, pr.owner, err = prefixClaim(prefix, contract); err != nil {
			return nil, err
		}
		pr.claim = &scriptCall{script: claimPrefixScript, keys: []string{s.k.prefixes()}, args: []any{up, pr.owner}}
	}
	pr.create = &scriptCall{script: createScript, keys: k, args: args}
	if ack != nil {
		pr.limit = &scriptCall{script: allowAckScript, keys: []string{s.k.rateLimit(ack.Sender)},
			args: []any{ms(ack.At), ack.Window.Milliseconds(), ack.Limit, ack.MsgKey}}
	}
	return pr, nil
}

// finishCreate reads the answers of a request's scripts.
func (s *Store) finishCreate(pr *createPrep) (r TicketAckResult) {
	fail := func(err error) TicketAckResult { return TicketAckResult{Err: err} }
	prefix, contract, nt, ack := pr.prefix, pr.contract, pr.nt, pr.ack
	if pr.claim != nil {
		raw, err := pr.claim.cmd.Text()
		if err != nil {
			return fail(fmt.Errorf("create ticket: record ticket prefix %s: %w", prefix, err))
		}
		if err := s.claimed(prefix, contract, pr.owner, raw); err != nil {
			// Redis lost the record and another contract claimed the
			// prefix since: this ticket is stored, but nothing more will be.
			return fail(fmt.Errorf("create ticket: %w", err))
		}
	}
	res, err := pr.create.cmd.StringSlice()
	if err != nil {
		if strings.Contains(err.Error(), "no imac slot") {
			return fail(fmt.Errorf("create ticket: %w: %w", ErrNoIMACSlot, err))
		}
		return fail(fmt.Errorf("create ticket for contract %q: %w", contract, err))
	}
	switch {
	case len(res) == 4 && res[0] == "1" && pr.exact:
		// Created: the ticket is the one sent, with the id and IMAC
		// members the script added (decoding the whole JSON back, times
		// and all, was a thirtieth of a backlog's CPU).
		r.Ticket = pr.stored
		if err := json.Unmarshal([]byte(`{"id":"`+res[1]+`"`+res[3]+`}`), &r.Ticket); err != nil {
			return fail(fmt.Errorf("decode ticket %s: %w", res[1], err))
		}
	case len(res) != 3 && len(res) != 4:
		return fail(fmt.Errorf("create ticket: unexpected script reply %q", res))
	case res[2] == "":
		return fail(fmt.Errorf("create ticket: dedup key %q names missing ticket %s", nt.DedupKey, res[1]))
	default:
		if err := json.Unmarshal([]byte(res[2]), &r.Ticket); err != nil {
			return fail(fmt.Errorf("decode ticket %s: %w", res[1], err))
		}
	}
	if pr.limit != nil {
		n, err := pr.limit.cmd.Int()
		if err != nil {
			return fail(fmt.Errorf("rate limit %s: %w", ack.Sender, err))
		}
		r.Allowed = n == 1
	}
	r.Created = res[0] == "1"
	return r
}

func clearIMAC(t *domain.Ticket) {
	t.IMACDate, t.IMACQuotaUse, t.IMACQuota, t.Billable, t.IMACDeferred = "", 0, 0, false, false
}

func imacParams(r *IMACRequest) (quota, perVisit int, policy string) {
	if r == nil {
		return 0, 0, ""
	}
	return r.MonthlyQuota, r.PerVisit, r.Policy
}

func imacCandidates(r *IMACRequest) int {
	if r == nil {
		return 0
	}
	return len(r.Candidates)
}

func appendCandidates(args []any, r *IMACRequest) []any {
	if r == nil {
		return args
	}
	for _, d := range r.Candidates {
		args = append(args, FormatDate(d))
	}
	return args
}

// jsonMembers encodes v as a JSON object without the named members and
// without its braces ("" for an empty object), for a script to complete.
func jsonMembers(v any, drop ...string) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode ticket: %w", err)
	}
	// The common case, a ticket without its id (the first member, empty):
	// cut it off instead of decoding and encoding the object again, which
	// cost 60 µs per new ticket in a backlog drain.
	if len(drop) == 1 && len(b) >= len(`{""}`) {
		if lead := `{"` + drop[0] + `":"",`; strings.HasPrefix(string(b), lead) && !bytes.Contains(b[len(lead):], []byte(`"`+drop[0]+`":`)) {
			return string(b[len(lead) : len(b)-1]), nil
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("encode ticket: %w", err)
	}
	for _, d := range drop {
		delete(m, d)
	}
	if b, err = json.Marshal(m); err != nil {
		return "", fmt.Errorf("encode ticket: %w", err)
	}
	return string(bytes.TrimSuffix(bytes.TrimPrefix(b, []byte("{")), []byte("}"))), nil
}

// Ticket returns a ticket by id (in any case and padding: "acme-42" finds
// ACME-0042), or an error wrapping ErrNotFound.
func (s *Store) Ticket(ctx context.Context, id string) (domain.Ticket, error) {
	t, _, err := s.readTicket(ctx, id)
	return t, err
}

// readTicket returns the ticket, its stored JSON and its contract.
func (s *Store) readTicket(ctx context.Context, id string) (domain.Ticket, []byte, error) {
	var t domain.Ticket
	contract, cid, err := s.resolve(ctx, id)
	if err != nil {
		return t, nil, err
	}
	raw, err := s.rdb.HGet(ctx, s.k.tickets(contract), cid).Bytes()
	if errors.Is(err, redis.Nil) {
		return t, nil, fmt.Errorf("ticket %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return t, nil, fmt.Errorf("read ticket %s: %w", id, err)
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, nil, fmt.Errorf("decode ticket %s: %w", id, err)
	}
	return t, raw, nil
}

// Events returns a ticket's events in the order they were recorded.
func (s *Store) Events(ctx context.Context, id string) ([]domain.Event, error) {
	contract, cid, err := s.resolve(ctx, id)
	if err != nil {
		return nil, err
	}
	raw, err := s.rdb.HGet(ctx, s.k.events(contract), cid).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("events of ticket %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read events of ticket %s: %w", id, err)
	}
	return decodeEvents(raw)
}

// decodeEvents parses the stored event lines.
func decodeEvents(raw string) ([]domain.Event, error) {
	var out []domain.Event
	for line := range strings.SplitSeq(raw, "\n") {
		if line == "" {
			continue
		}
		var ev domain.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return out, fmt.Errorf("decode event %d: %w", len(out)+1, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// TicketsByContract returns every ticket of a contract ("" for unknown
// senders) ordered by ticket number.
func (s *Store) TicketsByContract(ctx context.Context, contract string) ([]domain.Ticket, error) {
	m, err := s.rdb.HGetAll(ctx, s.k.tickets(contract)).Result()
	if err != nil {
		return nil, fmt.Errorf("read tickets of contract %q: %w", contract, err)
	}
	out := make([]domain.Ticket, 0, len(m))
	for id, raw := range m {
		var t domain.Ticket
		if err := json.Unmarshal([]byte(raw), &t); err != nil {
			return nil, fmt.Errorf("decode ticket %s: %w", id, err)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b domain.Ticket) int {
		_, na, _ := ParseTicketID(a.ID)
		_, nb, _ := ParseTicketID(b.ID)
		return cmp.Or(cmp.Compare(na, nb), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Change is one atomic change of a stored ticket, made by UpdateTicket.
// Every part is optional.
type Change struct {
	// Mutate edits the ticket (status, priority, first response, ...). It
	// may be called more than once (the change is retried when the ticket
	// changed meanwhile) and must not change ID, Contract or the IMAC
	// fields; those move only through IMAC and ReleaseIMAC.
	Mutate func(t *domain.Ticket) error
	// Event is appended to the ticket's history.
	Event *domain.Event
	// DedupKey makes the change happen at most once: when the key was used
	// before (by this or any ticket of the contract, including by
	// CreateTicket), nothing changes and UpdateTicket reports applied=false.
	DedupKey string
	// CancelTimers removes these timer kinds (pending or claimed).
	CancelTimers []string
	// Timers sets timers (replacing the same kinds; a claimed one is
	// rescheduled).
	Timers []Timer
	// IMAC moves the ticket's IMAC reservation: the old slot is released and
	// a new one reserved from the request (PolicyForce for a staff choice).
	IMAC *IMACRequest
	// ReleaseIMAC gives the ticket's slot back and clears its IMAC fields.
	ReleaseIMAC bool
}

const maxUpdateAttempts = 32

// UpdateTicket applies ch to ticket id atomically: the ticket, its event,
// its timers, its IMAC counters and the dedup key change together or not at
// all. It returns the ticket as stored afterwards and whether the change
// was applied (false: DedupKey was already used). Missing tickets give an
// error wrapping ErrNotFound.
func (s *Store) UpdateTicket(ctx context.Context, id string, ch Change) (domain.Ticket, bool, error) {
	var zero domain.Ticket
	for _, k := range ch.CancelTimers {
		if !validKind(k) {
			return zero, false, fmt.Errorf("update ticket %s: unknown timer kind %q", id, k)
		}
	}
	for _, tm := range ch.Timers {
		if !validKind(tm.Kind) || tm.Due.IsZero() {
			return zero, false, fmt.Errorf("update ticket %s: invalid timer %q at %v", id, tm.Kind, tm.Due)
		}
	}
	if ch.IMAC != nil {
		if ch.ReleaseIMAC {
			return zero, false, fmt.Errorf("update ticket %s: both IMAC and ReleaseIMAC", id)
		}
		if err := ch.IMAC.validate(); err != nil {
			return zero, false, fmt.Errorf("update ticket %s: %w", id, err)
		}
	}
	var ev []byte
	if ch.Event != nil {
		var err error
		if ev, err = json.Marshal(ch.Event); err != nil {
			return zero, false, fmt.Errorf("update ticket %s: encode event: %w", id, err)
		}
	}
	contract, cid, err := s.resolve(ctx, id)
	if err != nil {
		return zero, false, fmt.Errorf("update ticket: %w", err)
	}
	k := []string{s.k.tickets(contract), s.k.events(contract), s.k.dedup(contract), s.k.timers(contract), s.k.timerLeases(contract), s.k.timerDues(contract), s.k.imac(contract)}

	for range maxUpdateAttempts {
		cur, raw, err := s.readTicket(ctx, cid)
		if err != nil {
			return zero, false, fmt.Errorf("update ticket: %w", err)
		}
		next, err := ch.apply(cur)
		if err != nil {
			return zero, false, fmt.Errorf("update ticket %s: %w", cid, err)
		}
		body, err := json.Marshal(next)
		if err != nil {
			return zero, false, fmt.Errorf("update ticket %s: encode: %w", cid, err)
		}
		sum := sha1.Sum(raw)
		mode := ""
		switch {
		case ch.IMAC != nil:
			mode = "reserve"
		case ch.ReleaseIMAC:
			mode = "release"
		}
		quota, per, policy := imacParams(ch.IMAC)
		args := []any{cid, hex.EncodeToString(sum[:]), body, ev, ch.DedupKey, cur.IMACDate, mode,
			quota, per, policy, len(ch.CancelTimers), len(ch.Timers), imacCandidates(ch.IMAC)}
		for _, kind := range ch.CancelTimers {
			args = append(args, kind)
		}
		for _, tm := range ch.Timers {
			args = append(args, tm.Kind, ms(tm.Due))
		}
		args = appendCandidates(args, ch.IMAC)

		res, err := updateScript.Run(ctx, s.rdb, k, args...).StringSlice()
		if err != nil {
			if strings.Contains(err.Error(), "no imac slot") {
				return zero, false, fmt.Errorf("update ticket %s: %w: %w", cid, ErrNoIMACSlot, err)
			}
			return zero, false, fmt.Errorf("update ticket %s: %w", cid, err)
		}
		switch {
		case len(res) == 1 && res[0] == "-1":
			continue // changed since read: read again
		case len(res) == 1 && res[0] == "-2":
			return zero, false, fmt.Errorf("update ticket %s: %w", cid, ErrNotFound)
		case len(res) != 2:
			return zero, false, fmt.Errorf("update ticket %s: unexpected script reply %q", cid, res)
		}
		var t domain.Ticket
		if err := json.Unmarshal([]byte(res[1]), &t); err != nil {
			return zero, false, fmt.Errorf("decode ticket %s: %w", cid, err)
		}
		return t, res[0] == "1", nil
	}
	return zero, false, fmt.Errorf("update ticket %s: still changing after %d attempts", cid, maxUpdateAttempts)
}

// apply runs Mutate on a copy of cur and prepares the IMAC fields.
func (ch Change) apply(cur domain.Ticket) (domain.Ticket, error) {
	next := cur
	next.Cc = slices.Clone(cur.Cc)
	next.Rules = slices.Clone(cur.Rules)
	next.Tags = slices.Clone(cur.Tags)
	if ch.Mutate != nil {
		if err := ch.Mutate(&next); err != nil {
			return next, err
		}
	}
	switch {
	case next.ID != cur.ID, next.Contract != cur.Contract:
		return next, errors.New("mutate changed the ticket id or contract")
	case next.IMACDate != cur.IMACDate, next.IMACQuotaUse != cur.IMACQuotaUse, next.IMACQuota != cur.IMACQuota,
		next.Billable != cur.Billable, next.IMACDeferred != cur.IMACDeferred:
		return next, errors.New("mutate changed IMAC fields (use Change.IMAC or ReleaseIMAC)")
	}
	if ch.IMAC != nil || ch.ReleaseIMAC {
		clearIMAC(&next)
	}
	return next, nil
}

// AppendEvent adds an event to a ticket's history; with a non-empty
// dedupKey, at most once (added=false when the key was used before).
func (s *Store) AppendEvent(ctx context.Context, id string, ev domain.Event, dedupKey string) (added bool, err error) {
	_, added, err = s.UpdateTicket(ctx, id, Change{Event: &ev, DedupKey: dedupKey})
	return added, err
}

// IMACCounts is a snapshot of a contract's IMAC counters. It implements
// sla.Usage.
type IMACCounts struct {
	fields map[string]int
}

// MonthUsed is the number of IMACs scheduled in that month.
func (c IMACCounts) MonthUsed(year int, month time.Month) int {
	return c.fields[fmt.Sprintf("%04d-%02d", year, int(month))]
}

// DayUsed is the number of IMACs scheduled on that date.
func (c IMACCounts) DayUsed(d sla.Date) int { return c.fields[FormatDate(d)] }

// IMACUsage reads a contract's IMAC counters (read-only).
func (s *Store) IMACUsage(ctx context.Context, contract string) (IMACCounts, error) {
	m, err := s.rdb.HGetAll(ctx, s.k.imac(contract)).Result()
	if err != nil {
		return IMACCounts{}, fmt.Errorf("read imac counters of contract %q: %w", contract, err)
	}
	c := IMACCounts{fields: make(map[string]int, len(m))}
	for f, v := range m {
		n, err := strconv.Atoi(v)
		if err != nil {
			return IMACCounts{}, fmt.Errorf("imac counter %s of contract %q: %w", f, contract, err)
		}
		c.fields[f] = n
	}
	return c, nil
}

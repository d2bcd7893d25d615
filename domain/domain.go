// Package domain holds the types shared by every stage of the gateway: the
// parsed message, the classification result, tickets and their events. It is a
// leaf package: it imports only the standard library, so that ingest, classify,
// sla, store and notify never import each other just to exchange data.
package domain

import "time"

// Category is what kind of ticket a message opens.
type Category string

// The three categories of SPEC §1.
const (
	Fault   Category = "fault"
	Request Category = "request"
	IMAC    Category = "imac"
)

// Categories lists every valid category, in display order.
var Categories = []Category{Fault, Request, IMAC}

// Valid reports whether c is one of the known categories.
func (c Category) Valid() bool { return c == Fault || c == Request || c == IMAC }

// Priority of a ticket.
type Priority string

// The priorities, from most to least urgent.
const (
	Urgent Priority = "urgent"
	High   Priority = "high"
	Normal Priority = "normal"
	Low    Priority = "low"
)

// Priorities lists every valid priority, most urgent first.
var Priorities = []Priority{Urgent, High, Normal, Low}

// Valid reports whether p is one of the known priorities.
func (p Priority) Valid() bool { return p == Urgent || p == High || p == Normal || p == Low }

// Address is a mailbox with an optional display name. Addr is lower-cased by
// the parser only in its domain part; compare with strings.EqualFold.
type Address struct {
	Name string `json:"name,omitempty"`
	Addr string `json:"addr"`
}

// Attachment describes one attachment of a message (its bytes stay in the
// raw message).
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// HeaderField is one header of the top-level message, with RFC 2047
// encoded-words decoded where possible.
type HeaderField struct {
	Name  string
	Value string
}

// AutoKind says why a message is automatic mail that must never be
// acknowledged (SPEC §6). The empty kind means a human wrote it.
type AutoKind string

// Kinds of automatic mail. Their string values are the ack_reason values of
// `gateway classify --json`.
const (
	Human     AutoKind = ""
	AutoReply AutoKind = "auto-reply"
	Bounce    AutoKind = "bounce"
	List      AutoKind = "list"
	NoReply   AutoKind = "noreply"
	Loop      AutoKind = "loop" // carries our own loop marker
	Self      AutoKind = "self" // sent by one of the gateway's own addresses
)

// LoopHeader is the header every message the gateway sends carries; its value
// is the sending gateway's support address. Mail carrying it with one of our
// own addresses is never acknowledged.
const LoopHeader = "X-Ticket-Gateway-Loop"

// Message is a parsed RFC 5322 message: what rules, threading and the
// automatic-mail checks need. Parsing is lenient: whatever could be read is
// here, and what could not is described in Warnings.
type Message struct {
	From       Address   `json:"from"`
	Sender     *Address  `json:"sender,omitempty"`
	ReplyTo    []Address `json:"reply_to,omitempty"`
	To         []Address `json:"to,omitempty"`
	Cc         []Address `json:"cc,omitempty"`
	ReturnPath *string   `json:"return_path,omitempty"` // nil: no Return-Path header; "" : null path <>
	Subject    string    `json:"subject"`
	MessageID  string    `json:"message_id,omitempty"` // without angle brackets
	InReplyTo  []string  `json:"in_reply_to,omitempty"`
	References []string  `json:"references,omitempty"`
	Date       time.Time `json:"date,omitzero"`
	// Received is the instant the mail server received the message (IMAP
	// INTERNALDATE). The parser leaves it zero; the source sets it.
	Received time.Time `json:"received,omitzero"`

	Text         string        `json:"text"` // text body: text/plain preferred, else HTML rendered as text
	TextFromHTML bool          `json:"text_from_html,omitempty"`
	HTML         string        `json:"-"` // the first text/html part, if any (capped)
	Attachments  []Attachment  `json:"attachments,omitempty"`
	Headers      []HeaderField `json:"-"`

	// Auto is the automatic-mail verdict from the message alone; AutoWhy is
	// the header evidence for it.
	Auto    AutoKind `json:"auto,omitempty"`
	AutoWhy string   `json:"auto_why,omitempty"`

	Size     int64    `json:"size"`
	Warnings []string `json:"warnings,omitempty"`
}

// Header returns the first value of the named header (case-insensitive) and
// whether it was present.
func (m *Message) Header(name string) (string, bool) {
	for _, h := range m.Headers {
		if equalFoldASCII(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// HeaderValues returns every value of the named header, in message order.
func (m *Message) HeaderValues(name string) []string {
	var out []string
	for _, h := range m.Headers {
		if equalFoldASCII(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// TraceStep records one rule tried during classification.
type TraceStep struct {
	Rule    string            `json:"rule"`
	Matched bool              `json:"matched"`
	Why     string            `json:"why"`           // the condition that decided, in words
	Set     map[string]string `json:"set,omitempty"` // fields this rule actually set
	Stopped bool              `json:"stopped,omitempty"`
}

// Classification is the outcome of running the rules on a message.
type Classification struct {
	Contract  string      `json:"contract"`             // contract id, "" when the sender matches none
	MatchedBy string      `json:"matched_by,omitempty"` // "address" | "domain" | "subdomain"
	Category  Category    `json:"category"`
	Priority  Priority    `json:"priority"`
	Tags      []string    `json:"tags,omitempty"`
	Rules     []string    `json:"rules"` // names of the matching rules, in order
	Ack       bool        `json:"ack"`
	AckReason string      `json:"ack_reason,omitempty"`
	Drop      bool        `json:"drop,omitempty"`
	Trace     []TraceStep `json:"trace"`
}

// Status of a ticket.
type Status string

// Ticket states.
const (
	StatusOpen     Status = "open"
	StatusPending  Status = "pending"
	StatusResolved Status = "resolved"
	StatusClosed   Status = "closed"
)

// Ticket is the stored state of one ticket.
type Ticket struct {
	ID        string    `json:"id"` // e.g. ACME-0042
	Contract  string    `json:"contract"`
	Category  Category  `json:"category"`
	Priority  Priority  `json:"priority"`
	Status    Status    `json:"status"`
	Subject   string    `json:"subject"`
	Requester Address   `json:"requester"`
	Cc        []Address `json:"cc,omitempty"`
	Rules     []string  `json:"rules,omitempty"`
	Tags      []string  `json:"tags,omitempty"`
	MessageID string    `json:"message_id"`
	Opened    time.Time `json:"opened"` // INTERNALDATE of the first message

	EffectiveStart time.Time `json:"effective_start"`
	ResponseDue    time.Time `json:"response_due,omitzero"`
	ResolutionDue  time.Time `json:"resolution_due,omitzero"`
	ResponseWarn   time.Time `json:"response_warn,omitzero"`
	ResolutionWarn time.Time `json:"resolution_warn,omitzero"`
	// FirstResponse is the instant (INTERNALDATE of the staff reply) the
	// first response was recorded; zero while none was. A recorded response
	// meets the response deadline: its timers are void and a pause does not
	// move it.
	FirstResponse time.Time `json:"first_response,omitzero"`
	// PausedBusiness is the business time the ticket has spent pending on
	// the customer (SPEC §3a), by which its deadlines were moved on.
	PausedBusiness time.Duration `json:"paused_business,omitempty"`
	// PausedAt is when the ticket went pending on the customer (zero when it
	// is not pending).
	PausedAt time.Time `json:"paused_at,omitzero"`
	// Resolved is when the ticket was last resolved or closed: a customer
	// reply within the reopen window after it reopens the ticket.
	Resolved time.Time `json:"resolved,omitzero"`
	// RefersTo is the earlier ticket a new ticket continues (a reply to a
	// closed ticket, or to a resolved one after the reopen window).
	RefersTo string `json:"refers_to,omitempty"`

	IMACDate     string `json:"imac_date,omitempty"` // YYYY-MM-DD
	IMACQuotaUse int    `json:"imac_quota_used,omitempty"`
	IMACQuota    int    `json:"imac_quota,omitempty"`
	Billable     bool   `json:"billable,omitempty"`
	// IMACDeferred: the IMAC is scheduled in a later month than its first
	// possible service day, because that month had no quota (or, under the
	// billable policy, no per-visit capacity) left.
	IMACDeferred bool `json:"imac_deferred,omitempty"`
}

// EventKind names what happened to a ticket.
type EventKind string

// Event kinds.
const (
	EventOpened    EventKind = "opened"
	EventFollowUp  EventKind = "follow-up"
	EventResponse  EventKind = "response"
	EventResolved  EventKind = "resolved"
	EventClosed    EventKind = "closed"
	EventReopened  EventKind = "reopened"
	EventPending   EventKind = "pending"
	EventNote      EventKind = "note"
	EventChanged   EventKind = "changed"
	EventAutomatic EventKind = "automatic"
	// EventBreached records that an SLA deadline passed unmet. Its At is the
	// deadline; Data has "deadline" (response | resolution), "due" (RFC 3339)
	// and "overdue_business" (business time between the deadline and the
	// notice, a Go duration string).
	EventBreached EventKind = "breached"
)

// Event is one dated entry of a ticket's history. At is the INTERNALDATE of
// the message that caused it (SPEC §3a).
type Event struct {
	Kind      EventKind         `json:"kind"`
	At        time.Time         `json:"at"`
	MessageID string            `json:"message_id,omitempty"`
	Actor     string            `json:"actor,omitempty"`
	Data      map[string]string `json:"data,omitempty"`
}

package notify

import (
	"fmt"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

// Base is embedded in every template data type: who is writing, and the zone
// in which every date of the message is shown.
type Base struct {
	ServiceName    string // service.name, e.g. "Northwind IT Support"
	ServiceAddress string // the support address customers write to
	// Loc is the contract calendar's zone. The date functions fail when it is
	// nil rather than show a date in the wrong zone.
	Loc *time.Location
}

// Location returns the zone in which the message's dates are shown. Render
// reads it from any data value that has this method.
func (b Base) Location() *time.Location { return b.Loc }

// TicketInfo is what the acknowledgement, the staff copy and the SLA notices
// say about a ticket. Times are instants; the templates show them in
// Base.Loc. A zero time means "none".
type TicketInfo struct {
	TicketID     string // ACME-0042
	Tag          string // [ACME-0042], as it appears in subjects (SPEC §4)
	ContractName string // the contract's name; "" for a ticket without contract
	Subject      string // the original subject, as the customer wrote it
	Category     domain.Category
	Priority     domain.Priority

	Received       time.Time // INTERNALDATE of the first message
	EffectiveStart time.Time // when the SLA clock starts (SPEC §3a)
	OutsideHours   bool      // Received was outside business hours: EffectiveStart is later
	ResponseDue    time.Time // zero: no response target
	ResolutionDue  time.Time // zero: no resolution target
	// NoTargets is set for a fault or request whose category has no targets
	// at all: the message says the team will look at it from NextOpening
	// instead of promising a time.
	NoTargets   bool
	NextOpening time.Time

	// IMAC scheduling (SPEC §2.6). IMACDate is midnight of the service day
	// in Base.Loc (time.Date(y, m, d, 0, 0, 0, 0, loc)); zero when the IMAC
	// could not be scheduled.
	IMACDate      time.Time
	IMACQuotaUsed int  // IMACs in IMACDate's month, this one included
	IMACQuota     int  // the plan's monthly quota; 0 = unlimited
	Billable      bool // over quota under the billable policy
	Deferred      bool // moved to a later month because the quota was used up
}

// NewTicketInfo fills a TicketInfo from a stored ticket. OutsideHours,
// NoTargets and NextOpening are derived from the ticket's times; Deferred is
// not stored on a ticket, so the caller sets it from the IMAC slot when it
// has one.
func NewTicketInfo(t *domain.Ticket, contractName string, loc *time.Location) (TicketInfo, error) {
	if loc == nil {
		return TicketInfo{}, fmt.Errorf("ticket %s: %w", t.ID, errNoZone)
	}
	ti := TicketInfo{
		TicketID:       t.ID,
		Tag:            "[" + t.ID + "]",
		ContractName:   contractName,
		Subject:        t.Subject,
		Category:       t.Category,
		Priority:       t.Priority,
		Received:       t.Opened,
		EffectiveStart: t.EffectiveStart,
		OutsideHours:   t.EffectiveStart.After(t.Opened),
		ResponseDue:    t.ResponseDue,
		ResolutionDue:  t.ResolutionDue,
		NextOpening:    t.EffectiveStart,
		IMACQuotaUsed:  t.IMACQuotaUse,
		IMACQuota:      t.IMACQuota,
		Billable:       t.Billable,
	}
	if ti.EffectiveStart.IsZero() {
		ti.EffectiveStart, ti.NextOpening = t.Opened, t.Opened
	}
	if t.Category != domain.IMAC && t.ResponseDue.IsZero() && t.ResolutionDue.IsZero() {
		ti.NoTargets = true
	}
	if t.IMACDate != "" {
		d, err := time.ParseInLocation(time.DateOnly, t.IMACDate, loc)
		if err != nil {
			return TicketInfo{}, fmt.Errorf("ticket %s: parse imac date: %w", t.ID, err)
		}
		ti.IMACDate = d
	}
	return ti, nil
}

// AckData is the data of KindAck, the acknowledgement a customer receives
// for a new ticket (SPEC §7).
type AckData struct {
	Base
	TicketInfo
	CustomerName    string // the requester's display name; "" for a plain greeting
	CustomerAddress string
}

// ForwardData is the data of KindForward: the block placed before the copy
// of a customer's message that goes to the staff queue. Its Text and HTML are
// fragments, not whole documents.
type ForwardData struct {
	Base
	TicketInfo
	Requester domain.Address
	// From is the sender of this message when it is not the requester: a
	// colleague the customer copied, or the staff address of an
	// unauthenticated message. Zero otherwise.
	From   domain.Address
	Cc     []domain.Address // people the customer copied (they get the relayed replies)
	Status domain.Status
	Rules  []string // names of the matching rules, in order
	Tags   []string
	// FollowUp is set when the message is a customer follow-up on an existing
	// ticket; Reopened when that follow-up reopened a resolved ticket.
	FollowUp bool
	Reopened bool
	// Unauthenticated is set for mail from a staff address that failed the
	// Authentication-Results check (SPEC §6): nothing in it was relayed or
	// obeyed.
	Unauthenticated bool
	AckSent         bool
	AckReason       string   // why no acknowledgement was sent (an ack_reason value)
	Warnings        []string // what the parser could not read
}

// ResolvedData is the data of KindResolved, the notice that tells a customer
// their ticket was resolved.
type ResolvedData struct {
	Base
	TicketID     string
	Tag          string
	Subject      string // the ticket's subject
	CustomerName string
	Resolved     time.Time
	// ReopenUntil is the end of the reopen window: a reply before it
	// reopens the ticket, a later one opens a new ticket. Zero: no window.
	ReopenUntil time.Time
}

// UnknownSenderData is the data of KindUnknownSender, the polite reply to a
// sender that matches no contract (unknown_senders: reply).
type UnknownSenderData struct {
	Base
	SenderName    string
	SenderAddress string
	Subject       string // the subject of their message
	Received      time.Time
}

// CommandProblem is one rejected command line of a staff message.
type CommandProblem struct {
	Line    string // the command line as written, e.g. "#priority hgh"
	Problem string // what is wrong, e.g. `unknown priority "hgh"`
}

// CommandErrorData is the data of KindCommandError, the short reply to a
// staff member whose commands were not applied (SPEC §2.4).
type CommandErrorData struct {
	Base
	TicketID string // "" when the message named no ticket
	Tag      string
	Subject  string // the subject of the staff member's message
	Problems []CommandProblem
}

// DeadlineKind says which SLA deadline a notice is about.
type DeadlineKind string

// Deadline kinds of SLAData.
const (
	ResponseDeadline   DeadlineKind = "response"
	ResolutionDeadline DeadlineKind = "resolution"
)

// SLAData is the data of KindWarn (a deadline approaches: the warn share of
// its target has elapsed) and KindBreach (a deadline passed), sent to the
// staff queue and the escalation address.
type SLAData struct {
	Base
	TicketInfo
	Requester domain.Address
	Status    domain.Status
	Deadline  DeadlineKind
	Due       time.Time // the deadline this notice is about
	At        time.Time // when the notice fired
	WarnAt    int       // the warn share in percent (KindWarn); 0 = not stated
}

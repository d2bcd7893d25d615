package notify

import (
	"reflect"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

// The templates do not execute on the public data types but on a flat view
// of each: the same field names with the same types and values, and the same
// methods, but every field at the top level. text/template looks a field up
// by name with reflect; a promoted field (.TicketID of AckData comes from the
// embedded TicketInfo) misses reflect's fast path for top-level names and
// costs a breadth-first search over the embedded structs, with allocations,
// on every use: about a quarter of a render.
//
// A view also has the embedded values themselves as fields named after their
// types, so {{.Base.ServiceName}} and {{.TicketInfo.TicketID}} keep working,
// and each method of the public type (and of what it embeds) is declared on
// the view and calls the public one. TestTemplateViews fails when a public
// type and its view diverge, so a field added to TicketInfo cannot vanish
// from the templates.
//
// A view is the template's dot: a template that prints the dot whole
// ({{.}}, {{printf "%T" .}}) shows the view; no real template does that.
// Error messages name the public type (see renamedError).

// templateView returns the value the templates execute on for data: a view
// for the package's data types (a pointer to one for a pointer), data itself
// for any other type. data is not nil (zoneOf checks).
func templateView(data any) any {
	switch d := data.(type) {
	case AckData:
		return newAckView(&d)
	case *AckData:
		v := newAckView(d)
		return &v
	case ForwardData:
		return newForwardView(&d)
	case *ForwardData:
		v := newForwardView(d)
		return &v
	case ResolvedData:
		return newResolvedView(&d)
	case *ResolvedData:
		v := newResolvedView(d)
		return &v
	case UnknownSenderData:
		return newUnknownSenderView(&d)
	case *UnknownSenderData:
		v := newUnknownSenderView(d)
		return &v
	case CommandErrorData:
		return newCommandErrorView(&d)
	case *CommandErrorData:
		v := newCommandErrorView(d)
		return &v
	case SLAData:
		return newSLAView(&d)
	case *SLAData:
		v := newSLAView(d)
		return &v
	}
	return data
}

// renamedError is err with the view's type named as the public type it
// stands for ("can't evaluate field X in type notify.AckData"), so that an
// operator reads the type the documentation names.
func renamedError(err error, view, data any) error {
	vt, dt := reflect.TypeOf(view), reflect.TypeOf(data)
	if vt == dt { // not one of the package's data types: no view
		return err
	}
	if vt.Kind() == reflect.Pointer {
		vt, dt = vt.Elem(), dt.Elem()
	}
	msg := err.Error()
	if !strings.Contains(msg, vt.String()) {
		return err
	}
	return &renamed{msg: strings.ReplaceAll(msg, vt.String(), dt.String()), err: err}
}

// renamed is an error with another message that still unwraps to the
// original (a *template.ExecError, say), so errors.As and errors.Is see
// through the renaming.
type renamed struct {
	msg string
	err error
}

func (r *renamed) Error() string { return r.msg }
func (r *renamed) Unwrap() error { return r.err }

// ackView is the template view of AckData.
type ackView struct {
	// Base
	ServiceName    string
	ServiceAddress string
	Loc            *time.Location
	// TicketInfo
	TicketID       string
	Tag            string
	ContractName   string
	Subject        string
	Category       domain.Category
	Priority       domain.Priority
	Received       time.Time
	EffectiveStart time.Time
	OutsideHours   bool
	ResponseDue    time.Time
	ResolutionDue  time.Time
	NoTargets      bool
	NextOpening    time.Time
	IMACDate       time.Time
	IMACQuotaUsed  int
	IMACQuota      int
	Billable       bool
	Deferred       bool
	// AckData
	CustomerName    string
	CustomerAddress string
	// The embedded values, for {{.Base.X}} and {{.TicketInfo.X}}.
	Base       Base
	TicketInfo TicketInfo
}

func newAckView(d *AckData) ackView {
	b, ti := &d.Base, &d.TicketInfo
	return ackView{
		ServiceName: b.ServiceName, ServiceAddress: b.ServiceAddress, Loc: b.Loc,
		TicketID: ti.TicketID, Tag: ti.Tag, ContractName: ti.ContractName, Subject: ti.Subject,
		Category: ti.Category, Priority: ti.Priority,
		Received: ti.Received, EffectiveStart: ti.EffectiveStart, OutsideHours: ti.OutsideHours,
		ResponseDue: ti.ResponseDue, ResolutionDue: ti.ResolutionDue,
		NoTargets: ti.NoTargets, NextOpening: ti.NextOpening,
		IMACDate: ti.IMACDate, IMACQuotaUsed: ti.IMACQuotaUsed, IMACQuota: ti.IMACQuota,
		Billable: ti.Billable, Deferred: ti.Deferred,
		CustomerName: d.CustomerName, CustomerAddress: d.CustomerAddress,
		Base: d.Base, TicketInfo: d.TicketInfo,
	}
}

// Location is Base.Location.
func (v ackView) Location() *time.Location { return v.Base.Location() }

// forwardView is the template view of ForwardData.
type forwardView struct {
	// Base
	ServiceName    string
	ServiceAddress string
	Loc            *time.Location
	// TicketInfo
	TicketID       string
	Tag            string
	ContractName   string
	Subject        string
	Category       domain.Category
	Priority       domain.Priority
	Received       time.Time
	EffectiveStart time.Time
	OutsideHours   bool
	ResponseDue    time.Time
	ResolutionDue  time.Time
	NoTargets      bool
	NextOpening    time.Time
	IMACDate       time.Time
	IMACQuotaUsed  int
	IMACQuota      int
	Billable       bool
	Deferred       bool
	// ForwardData
	Requester       domain.Address
	From            domain.Address
	Cc              []domain.Address
	Status          domain.Status
	Rules           []string
	Tags            []string
	FollowUp        bool
	Reopened        bool
	Unauthenticated bool
	AckSent         bool
	AckReason       string
	Warnings        []string
	// The embedded values, for {{.Base.X}} and {{.TicketInfo.X}}.
	Base       Base
	TicketInfo TicketInfo
}

func newForwardView(d *ForwardData) forwardView {
	b, ti := &d.Base, &d.TicketInfo
	return forwardView{
		ServiceName: b.ServiceName, ServiceAddress: b.ServiceAddress, Loc: b.Loc,
		TicketID: ti.TicketID, Tag: ti.Tag, ContractName: ti.ContractName, Subject: ti.Subject,
		Category: ti.Category, Priority: ti.Priority,
		Received: ti.Received, EffectiveStart: ti.EffectiveStart, OutsideHours: ti.OutsideHours,
		ResponseDue: ti.ResponseDue, ResolutionDue: ti.ResolutionDue,
		NoTargets: ti.NoTargets, NextOpening: ti.NextOpening,
		IMACDate: ti.IMACDate, IMACQuotaUsed: ti.IMACQuotaUsed, IMACQuota: ti.IMACQuota,
		Billable: ti.Billable, Deferred: ti.Deferred,
		Requester: d.Requester, From: d.From, Cc: d.Cc, Status: d.Status,
		Rules: d.Rules, Tags: d.Tags, FollowUp: d.FollowUp, Reopened: d.Reopened,
		Unauthenticated: d.Unauthenticated, AckSent: d.AckSent, AckReason: d.AckReason,
		Warnings: d.Warnings,
		Base:     d.Base, TicketInfo: d.TicketInfo,
	}
}

// Location is Base.Location.
func (v forwardView) Location() *time.Location { return v.Base.Location() }

// resolvedView is the template view of ResolvedData.
type resolvedView struct {
	// Base
	ServiceName    string
	ServiceAddress string
	Loc            *time.Location
	// ResolvedData
	TicketID     string
	Tag          string
	Subject      string
	CustomerName string
	Resolved     time.Time
	ReopenUntil  time.Time
	// The embedded value, for {{.Base.X}}.
	Base Base
}

func newResolvedView(d *ResolvedData) resolvedView {
	b := &d.Base
	return resolvedView{
		ServiceName: b.ServiceName, ServiceAddress: b.ServiceAddress, Loc: b.Loc,
		TicketID: d.TicketID, Tag: d.Tag, Subject: d.Subject, CustomerName: d.CustomerName,
		Resolved: d.Resolved, ReopenUntil: d.ReopenUntil,
		Base: d.Base,
	}
}

// Location is Base.Location.
func (v resolvedView) Location() *time.Location { return v.Base.Location() }

// unknownSenderView is the template view of UnknownSenderData.
type unknownSenderView struct {
	// Base
	ServiceName    string
	ServiceAddress string
	Loc            *time.Location
	// UnknownSenderData
	SenderName    string
	SenderAddress string
	Subject       string
	Received      time.Time
	// The embedded value, for {{.Base.X}}.
	Base Base
}

func newUnknownSenderView(d *UnknownSenderData) unknownSenderView {
	b := &d.Base
	return unknownSenderView{
		ServiceName: b.ServiceName, ServiceAddress: b.ServiceAddress, Loc: b.Loc,
		SenderName: d.SenderName, SenderAddress: d.SenderAddress, Subject: d.Subject, Received: d.Received,
		Base: d.Base,
	}
}

// Location is Base.Location.
func (v unknownSenderView) Location() *time.Location { return v.Base.Location() }

// commandErrorView is the template view of CommandErrorData.
type commandErrorView struct {
	// Base
	ServiceName    string
	ServiceAddress string
	Loc            *time.Location
	// CommandErrorData
	TicketID string
	Tag      string
	Subject  string
	Problems []CommandProblem
	// The embedded value, for {{.Base.X}}.
	Base Base
}

func newCommandErrorView(d *CommandErrorData) commandErrorView {
	b := &d.Base
	return commandErrorView{
		ServiceName: b.ServiceName, ServiceAddress: b.ServiceAddress, Loc: b.Loc,
		TicketID: d.TicketID, Tag: d.Tag, Subject: d.Subject, Problems: d.Problems,
		Base: d.Base,
	}
}

// Location is Base.Location.
func (v commandErrorView) Location() *time.Location { return v.Base.Location() }

// slaView is the template view of SLAData.
type slaView struct {
	// Base
	ServiceName    string
	ServiceAddress string
	Loc            *time.Location
	// TicketInfo
	TicketID       string
	Tag            string
	ContractName   string
	Subject        string
	Category       domain.Category
	Priority       domain.Priority
	Received       time.Time
	EffectiveStart time.Time
	OutsideHours   bool
	ResponseDue    time.Time
	ResolutionDue  time.Time
	NoTargets      bool
	NextOpening    time.Time
	IMACDate       time.Time
	IMACQuotaUsed  int
	IMACQuota      int
	Billable       bool
	Deferred       bool
	// SLAData
	Requester domain.Address
	Status    domain.Status
	Deadline  DeadlineKind
	Due       time.Time
	At        time.Time
	WarnAt    int
	// The embedded values, for {{.Base.X}} and {{.TicketInfo.X}}.
	Base       Base
	TicketInfo TicketInfo
}

func newSLAView(d *SLAData) slaView {
	b, ti := &d.Base, &d.TicketInfo
	return slaView{
		ServiceName: b.ServiceName, ServiceAddress: b.ServiceAddress, Loc: b.Loc,
		TicketID: ti.TicketID, Tag: ti.Tag, ContractName: ti.ContractName, Subject: ti.Subject,
		Category: ti.Category, Priority: ti.Priority,
		Received: ti.Received, EffectiveStart: ti.EffectiveStart, OutsideHours: ti.OutsideHours,
		ResponseDue: ti.ResponseDue, ResolutionDue: ti.ResolutionDue,
		NoTargets: ti.NoTargets, NextOpening: ti.NextOpening,
		IMACDate: ti.IMACDate, IMACQuotaUsed: ti.IMACQuotaUsed, IMACQuota: ti.IMACQuota,
		Billable: ti.Billable, Deferred: ti.Deferred,
		Requester: d.Requester, Status: d.Status, Deadline: d.Deadline, Due: d.Due, At: d.At, WarnAt: d.WarnAt,
		Base: d.Base, TicketInfo: d.TicketInfo,
	}
}

// Location is Base.Location.
func (v slaView) Location() *time.Location { return v.Base.Location() }

package sla

import "time"

// Date is a civil date (no time of day, no zone).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Window is one half-open opening window [Open, Close) in minutes after local
// midnight: 0 <= Open < Close <= 1440 (1440 is "24:00").
type Window struct {
	Open, Close int
}

// Hours is a day's opening windows, sorted and non-overlapping. Empty means
// closed.
type Hours []Window

// Calendar is a business calendar in one time zone.
type Calendar struct {
	Name string
	Loc  *time.Location
	// Week is indexed by time.Weekday; an empty entry is a closed day.
	Week [7]Hours
	// Holidays replace a date's windows: a present key with empty Hours closes
	// the whole day, non-empty Hours are that day's own hours.
	Holidays map[Date]Hours
}

// Span is an SLA duration: either business time (Dur, from "30m", "4h",
// "1h30m") or business days (Days, from "2d"). Exactly one is non-zero.
type Span struct {
	Dur  time.Duration
	Days int
}

// Target is the response and resolution target of one category × priority.
// A nil span means no such target.
type Target struct {
	Response   *Span
	Resolution *Span
}

// Deadlines are the promised instants for one ticket. Zero values mean "no
// such deadline".
type Deadlines struct {
	Received       time.Time // as given (INTERNALDATE), in the calendar's zone
	EffectiveStart time.Time // the next opening at or after Received
	ResponseDue    time.Time
	ResolutionDue  time.Time
	ResponseWarn   time.Time // warn_at share of the response target elapsed
	ResolutionWarn time.Time
}

// IMACPlan is a contract's IMAC terms.
type IMACPlan struct {
	ServiceDays  []time.Weekday
	Notice       Span
	MonthlyQuota int    // 0: unlimited
	PerVisit     int    // 0: unlimited
	OverQuota    string // "next_month" or "billable"
}

// Over-quota policies.
const (
	OverQuotaNextMonth = "next_month"
	OverQuotaBillable  = "billable"
)

// Usage reports how many IMACs are already scheduled. Offline (gateway
// classify) nothing is used: NoUsage.
type Usage interface {
	// MonthUsed is the number of IMACs already scheduled in that calendar
	// month (of the scheduled date, in the calendar's zone).
	MonthUsed(year int, month time.Month) int
	// DayUsed is the number of IMACs already scheduled on that date.
	DayUsed(d Date) int
}

// NoUsage is a Usage with nothing scheduled.
type NoUsage struct{}

// MonthUsed implements Usage.
func (NoUsage) MonthUsed(int, time.Month) int { return 0 }

// DayUsed implements Usage.
func (NoUsage) DayUsed(Date) int { return 0 }

// IMACSlot is where an IMAC was scheduled.
type IMACSlot struct {
	Received       time.Time
	EffectiveStart time.Time
	NoticeEnd      time.Time
	Date           Date
	QuotaUsed      int  // IMACs in Date's month including this one
	Quota          int  // the plan's monthly quota (0: unlimited)
	Billable       bool // over quota under the billable policy
	Deferred       bool // moved to a later month because the month was full
}

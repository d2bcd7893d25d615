// Package report builds the quarterly business review (QBR, SPEC §8) of a
// contract: counts by category, priority, month, week and site, the change
// against the previous quarter, SLA compliance, IMAC use against the quota,
// the busiest requesters and rules, a normal range of weekly volume from the
// trailing quarters with the episodes outside it, and plain-language
// recommendations. Every number comes from what the gateway recorded (ticket
// fields and events); nothing is re-estimated.
//
// Build is a pure function of its Input; Load reads a contract's tickets and
// events from the store; RenderHTML writes one self-contained, printable HTML
// document with inline SVG charts (right-to-left in Hebrew), RenderCSV every
// figure as one CSV row.
package report

import (
	"encoding/json"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
)

// TicketWithEvents is one ticket and its history, in recorded order.
type TicketWithEvents struct {
	Ticket domain.Ticket
	Events []domain.Event
}

// Defaults of the method parameters (see Params).
const (
	DefaultHistoryQuarters  = 4
	DefaultBandK            = 1.5
	DefaultMinBandHalfWidth = 1.0
	DefaultMinHistoryWeeks  = 8
	DefaultTarget           = 0.95
	DefaultChangeLookback   = 14
	DefaultTop              = 5
	DefaultMinMeasured      = 3
	DefaultMinRise          = 5
	DefaultMinRisePct       = 20.0
	DefaultDriverShare      = 0.5
	DefaultMinMisfiled      = 3
)

// Params are the method's parameters. Zero fields take the defaults above.
type Params struct {
	// HistoryQuarters is how many quarters (13 weeks each) before the
	// quarter feed the normal range.
	HistoryQuarters int `json:"history_quarters"`
	// BandK: the normal range is median ± BandK·IQR of the trailing weekly
	// counts, floored at 0.
	BandK float64 `json:"band_k"`
	// MinBandHalfWidth widens a band narrower than median ± this many
	// tickets (an IQR of 0 would otherwise flag every change of one).
	MinBandHalfWidth float64 `json:"min_band_half_width"`
	// MinHistoryWeeks: with fewer trailing weeks there is no band.
	MinHistoryWeeks int `json:"min_history_weeks"`
	// Target is the SLA compliance target, a share (0.95).
	Target float64 `json:"target"`
	// ChangeLookback is how many days before an episode starts a known
	// change is taken to be related to it (changes within the episode's
	// first week count too).
	ChangeLookback int `json:"change_lookback_days"`
	// Top is the length of the requester and rule rankings.
	Top int `json:"top"`
	// MinMeasured is the fewest measured tickets (met + missed) for a
	// compliance figure to yield a recommendation.
	MinMeasured int `json:"min_measured"`
	// MinRise and MinRisePct: a category "rose" when it grew by at least
	// MinRise tickets and MinRisePct percent (or from zero).
	MinRise    int     `json:"min_rise"`
	MinRisePct float64 `json:"min_rise_pct"`
	// DriverShare: one requester or rule "drives" a rise when its own
	// increase is more than this share of the category's increase.
	DriverShare float64 `json:"driver_share"`
	// MinMisfiled is the fewest IMACs opened as faults that yield the
	// reminder of the IMAC process (two suffice when they are a fifth or
	// more of the quarter's IMACs).
	MinMisfiled int `json:"min_misfiled"`
}

func (p Params) withDefaults() Params {
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setF := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&p.HistoryQuarters, DefaultHistoryQuarters)
	setF(&p.BandK, DefaultBandK)
	if p.MinBandHalfWidth < 0 {
		p.MinBandHalfWidth = 0
	} else if p.MinBandHalfWidth == 0 {
		p.MinBandHalfWidth = DefaultMinBandHalfWidth
	}
	set(&p.MinHistoryWeeks, DefaultMinHistoryWeeks)
	setF(&p.Target, DefaultTarget)
	set(&p.ChangeLookback, DefaultChangeLookback)
	set(&p.Top, DefaultTop)
	set(&p.MinMeasured, DefaultMinMeasured)
	set(&p.MinRise, DefaultMinRise)
	setF(&p.MinRisePct, DefaultMinRisePct)
	setF(&p.DriverShare, DefaultDriverShare)
	set(&p.MinMisfiled, DefaultMinMisfiled)
	return p
}

// Input is everything Build needs.
type Input struct {
	// Contract with its calendar (required).
	Contract *rules.Contract
	Quarter  Quarter
	// Tickets are the contract's tickets with their events: the quarter's,
	// the previous quarter's and the trailing history (others are ignored).
	Tickets []TicketWithEvents
	// AsOf is the instant the report describes the state at: events after it
	// are ignored and a deadline after it is not yet due. Zero: the end of
	// the quarter.
	AsOf time.Time
	// HistoryStart, when set, is the first date the contract had service;
	// by default the date of its earliest ticket.
	HistoryStart time.Time
	Params       Params
}

// QBR is a built quarterly review. Its JSON form is the golden form of the
// tests and a stable interface for scripts.
type QBR struct {
	Contract  ContractInfo `json:"contract"`
	Quarter   string       `json:"quarter"`
	Start     string       `json:"start"` // first day, YYYY-MM-DD
	End       string       `json:"end"`   // first day after, YYYY-MM-DD
	Previous  string       `json:"previous"`
	AsOf      time.Time    `json:"as_of"`
	WeekStart string       `json:"week_start"` // sunday | monday
	Params    Params       `json:"params"`

	Total      Count       `json:"total"`
	ByCategory []Count     `json:"by_category"` // fault, request, imac
	ByPriority []Count     `json:"by_priority"` // urgent, high, normal, low
	Matrix     []MatrixRow `json:"matrix"`      // category × priority
	Months     []Bucket    `json:"months"`
	Weeks      []Bucket    `json:"weeks"`
	Sites      []Bucket    `json:"sites,omitempty"`

	SLA        []Compliance  `json:"sla"`
	IMAC       *IMACUse      `json:"imac,omitempty"`
	Requesters []Ranked      `json:"requesters"`
	Rules      []Ranked      `json:"rules"`
	Reopened   Reopened      `json:"reopened"`
	Misfiled   Misfiled      `json:"misfiled"`
	Changes    []KnownChange `json:"changes"`

	Normal   []Band    `json:"normal_range"`
	Episodes []Episode `json:"episodes"`
	Findings []Finding `json:"findings"`
}

// ContractInfo identifies the contract in the report.
type ContractInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Language string `json:"language"`
	Calendar string `json:"calendar"`
	Timezone string `json:"timezone"`
}

// Count is a figure of the quarter with the previous quarter's.
type Count struct {
	Key      string `json:"key"`
	Count    int    `json:"count"`
	Previous int    `json:"previous"`
	Delta    int    `json:"delta"`
	// Pct is the change in percent of Previous; nil ("n/a") when Previous
	// is 0.
	Pct *float64 `json:"pct"`
}

func newCount(key string, cur, prev int) Count {
	c := Count{Key: key, Count: cur, Previous: prev, Delta: cur - prev}
	if prev > 0 {
		p := 100 * float64(cur-prev) / float64(prev)
		c.Pct = &p
	}
	return c
}

// MatrixRow is one category's counts by priority.
type MatrixRow struct {
	Category   domain.Category `json:"category"`
	ByPriority map[string]int  `json:"by_priority"`
}

// Bucket is a count of the quarter's tickets by category in one month, week
// or site.
type Bucket struct {
	Key        string         `json:"key"` // YYYY-MM, the week's first day, or the site name
	Total      int            `json:"total"`
	ByCategory map[string]int `json:"by_category"`
	// Days is the number of the week's days inside the quarter (weeks only);
	// a week with fewer than 7 is partial and not judged against the band.
	Days int `json:"days,omitempty"`
}

// Duration is a business duration; it marshals as a Go duration string.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Hours is d in hours.
func (d Duration) Hours() float64 { return time.Duration(d).Hours() }

// Measure is the compliance with one kind of deadline.
type Measure struct {
	Met    int `json:"met"`
	Missed int `json:"missed"`
	// Pending: the deadline is after AsOf and not met yet (excluded).
	Pending int `json:"pending"`
	// Rate is Met/(Met+Missed); nil when nothing was measured.
	Rate *float64 `json:"rate"`
	// Median and P90 of the business time taken, by nearest rank, over the
	// tickets that got a response (resolution) by AsOf; nil when none.
	Median *Duration `json:"median,omitempty"`
	P90    *Duration `json:"p90,omitempty"`
	Timed  int       `json:"timed"` // tickets behind Median and P90
}

// Measured is Met+Missed.
func (m Measure) Measured() int { return m.Met + m.Missed }

// Compliance is one category's SLA compliance.
type Compliance struct {
	Category   domain.Category `json:"category"`
	Tickets    int             `json:"tickets"`
	WithTarget int             `json:"with_target"`
	Response   Measure         `json:"response"`
	Resolution Measure         `json:"resolution"`
}

// IMACUse is the IMAC use of the quarter's months.
type IMACUse struct {
	Quota          int         `json:"quota"` // 0: unlimited
	Policy         string      `json:"policy"`
	Months         []IMACMonth `json:"months"`
	Scheduled      int         `json:"scheduled"`
	Billable       int         `json:"billable"`
	ExceededMonths int         `json:"exceeded_months"`
}

// IMACMonth is one month's IMAC use.
type IMACMonth struct {
	Month string `json:"month"` // YYYY-MM
	// Requested: IMAC tickets opened in the month.
	Requested int `json:"requested"`
	// Scheduled: IMACs whose service day is in the month (the quota's
	// unit), wherever they were opened; Billable of them over quota.
	Scheduled int `json:"scheduled"`
	Billable  int `json:"billable"`
	// Deferred: IMACs opened in the month that were moved to a later month
	// for lack of quota.
	Deferred int `json:"deferred"`
	Quota    int `json:"quota"`
	// Exceeded: the quota did not cover the month's demand (an IMAC had to
	// be deferred or billed, or more were scheduled than the quota).
	Exceeded bool `json:"exceeded"`
}

// Ranked is one entry of a ranking.
type Ranked struct {
	Key   string `json:"key"`
	Name  string `json:"name,omitempty"`
	Count int    `json:"count"`
}

// Reopened counts reopenings in the quarter: reopened events after a
// resolution or closure (a staff #open of a pending ticket is not one).
type Reopened struct {
	Events  int `json:"events"`
	Tickets int `json:"tickets"`
}

// Misfiled counts the quarter's tickets opened as faults that staff
// recategorised as IMACs.
type Misfiled struct {
	FaultToIMAC int `json:"fault_to_imac"`
	UrgentHigh  int `json:"urgent_high"` // of them, opened as urgent or high
	IMACs       int `json:"imacs"`       // IMACs of the quarter, for scale
}

// KnownChange is a dated change: from the contract or a staff #change.
type KnownChange struct {
	Date      string `json:"date"` // YYYY-MM-DD
	What      string `json:"what"`
	Ticket    string `json:"ticket,omitempty"` // the ticket the #change was sent on
	InQuarter bool   `json:"in_quarter"`
}

// Band is the normal range of weekly volume of one category ("all" for
// every ticket).
type Band struct {
	Category     string  `json:"category"`
	HistoryWeeks int     `json:"history_weeks"`
	Enough       bool    `json:"enough"` // false: "not enough history", no band
	Median       float64 `json:"median"`
	Q1           float64 `json:"q1"`
	Q3           float64 `json:"q3"`
	Lo           float64 `json:"lo"`
	Hi           float64 `json:"hi"`
	// Marks has one entry per week of QBR.Weeks: "above", "below", "in" or
	// "" (not judged: partial week or no band).
	Marks []string `json:"marks"`
	// History is the trailing weekly counts, oldest first.
	History []int `json:"history"`
}

// Episode is a run of weeks outside the normal range.
type Episode struct {
	Category  string `json:"category"`
	Direction string `json:"direction"` // above | below
	Start     string `json:"start"`     // first week's first day
	Weeks     int    `json:"weeks"`
	Peak      int    `json:"peak"` // the highest (lowest, below) weekly count
	// BackFrom is the first day of the first week back in the range; ""
	// when the episode lasts to the end of the quarter.
	BackFrom string `json:"back_from,omitempty"`
	// Next is the mark of the week after the episode: "in" (back to
	// normal), the other direction, or "" (the judged weeks ended).
	Next    string        `json:"next"`
	Changes []KnownChange `json:"changes,omitempty"`
}

// String is a compact JSON form for debugging.
func (q *QBR) String() string {
	b, _ := json.Marshal(q)
	return string(b)
}

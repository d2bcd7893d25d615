package service

import (
	"fmt"
	"time"

	"github.com/northwind-it/ticketgw/classify"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
)

// Decision is everything the gateway decides about a new message before it
// stores anything: its classification, its contract and the dates it
// promises. `gateway classify` prints it; `gateway run` stores it. Both use
// Decide, so what an admin tests offline is what the service does.
type Decision struct {
	Msg      *domain.Message
	Class    domain.Classification
	Contract *rules.Contract // nil for an unknown sender
	Loc      *time.Location  // the contract calendar's zone (UTC without a contract)
	Received time.Time       // INTERNALDATE, in Loc

	// Deadlines for faults and requests (and IMACs with targets). HasTargets
	// is false when the category has no targets: the acknowledgement then
	// names NextOpening instead of promising a time.
	Deadlines   sla.Deadlines
	HasTargets  bool
	NextOpening time.Time

	// IMAC is the scheduled service day for an IMAC under a contract with
	// IMAC terms; nil otherwise.
	IMAC *sla.IMACSlot
	// IMACRequest lists the candidate days for the Redis store to reserve
	// atomically (the offline IMAC above assumes the usage it was given).
	IMACCandidates []sla.Date
}

// imacCandidateCount covers more than a year of weekly service days, enough
// for next_month deferral across a full year.
const imacCandidateCount = 120

// Decide classifies m and computes its promised dates as if it was received
// at received. usage gives the IMAC counts already used (sla.NoUsage{}
// offline). It fails only when a calendar cannot produce a date (a
// configuration that never opens, which validation rejects).
func Decide(cfg *rules.Config, cl *classify.Classifier, m *domain.Message, received time.Time, usage sla.Usage) (Decision, error) {
	d := Decision{Msg: m, Class: cl.Classify(m), Loc: time.UTC}
	if d.Class.Contract != "" {
		d.Contract = cfg.ContractByID(d.Class.Contract)
	}
	if d.Contract == nil || d.Contract.Calendar == nil {
		d.Received = received.In(d.Loc)
		return d, nil
	}
	cal := d.Contract.Calendar
	d.Loc = cal.Loc
	d.Received = received.In(d.Loc)
	d.NextOpening = cal.NextOpening(d.Received)
	if d.NextOpening.IsZero() {
		return d, fmt.Errorf("calendar %s never opens after %s", cal.Name, d.Received.Format(time.RFC3339))
	}
	if t, ok := d.Contract.SLA.Target(d.Class.Category, d.Class.Priority); ok {
		d.HasTargets = true
		d.Deadlines = sla.Compute(cal, d.Received, t, d.Contract.SLA.WarnAt)
	} else {
		d.Deadlines = sla.Deadlines{Received: d.Received, EffectiveStart: d.NextOpening}
	}
	if d.Class.Category == domain.IMAC && d.Contract.IMAC != nil {
		slot, err := sla.ScheduleIMAC(cal, d.Received, *d.Contract.IMAC, usage)
		if err != nil {
			return d, fmt.Errorf("schedule imac for %s: %w", d.Contract.ID, err)
		}
		d.IMAC = &slot
		d.IMACCandidates = cal.ServiceDayCandidates(slot.NoticeEnd, d.Contract.IMAC.ServiceDays, imacCandidateCount)
	}
	return d, nil
}

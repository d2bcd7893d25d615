package service

import (
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// PauseShift is the business time between pausedAt and resumedAt in cal:
// the time a ticket pending on the customer did not consume of its targets
// (SPEC §3a). A pause that begins and ends outside business hours, with no
// opening between, shifts nothing. It is 0 without a calendar (a ticket
// without a contract has no deadlines) and when resumedAt is not after
// pausedAt.
func PauseShift(cal *sla.Calendar, pausedAt, resumedAt time.Time) time.Duration {
	if cal == nil {
		return 0
	}
	return cal.BusinessBetween(pausedAt, resumedAt)
}

// ResumeDeadlines is t after a pause from pausedAt to resumedAt: every SLA
// instant (response and resolution deadline and their warnings) that had not
// yet passed at pausedAt moves on by the paused business time, with
// cal.AddBusiness, and PausedBusiness grows by it. Instants already passed
// at pausedAt, and the response deadline and warning once a first response
// is recorded (the deadline is met), stay as they are.
//
// The timers returned are those of every instant still pending (moved or,
// for a pause without business time, unchanged): setting them with
// store.Change.Timers re-arms whatever the pause cancelled or the timer
// worker discarded while the ticket was pending. t's status is not changed;
// the caller sets it with the same store.Change.
func ResumeDeadlines(cal *sla.Calendar, t domain.Ticket, pausedAt, resumedAt time.Time) (domain.Ticket, []store.Timer) {
	shift := PauseShift(cal, pausedAt, resumedAt)
	t.PausedBusiness += shift
	responded := !t.FirstResponse.IsZero()
	var timers []store.Timer
	move := func(kind string, at *time.Time, met bool) {
		if at.IsZero() || met || !at.After(pausedAt) {
			return
		}
		if shift > 0 {
			// Zero only when the calendar never opens again (validation
			// rejects such calendars): the promise then stays as made.
			if moved := cal.AddBusiness(*at, shift); !moved.IsZero() {
				*at = moved
			}
		}
		timers = append(timers, store.Timer{Kind: kind, Due: *at})
	}
	move(store.ResponseWarn, &t.ResponseWarn, responded)
	move(store.ResponseBreach, &t.ResponseDue, responded)
	move(store.ResolutionWarn, &t.ResolutionWarn, false)
	move(store.ResolutionBreach, &t.ResolutionDue, false)
	return t, timers
}

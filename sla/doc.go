// Package sla is the time arithmetic behind every promise the gateway makes:
// business calendars (several windows a day, holidays with their own hours,
// any IANA zone, DST), response and resolution deadlines, and IMAC service-day
// scheduling, exactly as SPEC §3a defines them.
//
// Everything here is a pure function of time.Time and *time.Location: no
// clock is read and no state is kept. Durations are never divided by 24h;
// days are walked as civil dates in the calendar's zone. A Calendar is only
// read, so one value may be shared by any number of goroutines.
//
// The rules, in brief:
//   - Windows are half-open [open, close) wall-clock ranges. An instant is
//     open when its wall clock, on its own date, lies in one of that date's
//     windows, so a window partly skipped by a spring-forward covers only the
//     real instants that exist, and a window spanning a fall-back's repeated
//     hour is open in both passes. Business time is real elapsed time inside
//     windows.
//   - The clock starts at the effective start: NextOpening(received).
//   - h and m targets: AddBusiness, whose result may be exactly a closing
//     instant (16:00 + 1h with a 17:00 close is 17:00).
//   - d targets: AddBusinessDays, the nth business day after the effective
//     start's date at the same wall-clock time, moved to that day's first
//     opening or last preceding close when the time falls outside its
//     windows.
//   - Warnings: WarnShare of the business time between the effective start
//     and the deadline.
//   - IMACs: NoticeEnd, then the first service day whose first opening is at
//     or after it, with quota and capacity left (ScheduleIMAC, ChooseIMAC).
//   - Pausing: a ticket paused from p to r has its deadlines moved on with
//     AddBusiness(due, BusinessBetween(p, r)).
package sla

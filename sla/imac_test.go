package sla

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// usage is a Usage backed by maps, counting the calls it gets.
type usage struct {
	month map[string]int // by MonthKey
	day   map[Date]int
	calls int
}

func (u *usage) MonthUsed(y int, m time.Month) int {
	u.calls++
	return u.month[MonthKey(Date{Year: y, Month: m, Day: 1})]
}

func (u *usage) DayUsed(d Date) int {
	u.calls++
	return u.day[d]
}

func tuesdayPlan(policy string) IMACPlan {
	return IMACPlan{
		ServiceDays:  []time.Weekday{time.Tuesday},
		Notice:       Span{Days: 2},
		MonthlyQuota: 10,
		PerVisit:     5,
		OverQuota:    policy,
	}
}

func TestScheduleIMAC(t *testing.T) {
	c := israelOffice(t)
	tests := []struct {
		name      string
		received  string
		plan      IMACPlan
		used      *usage
		effective string
		notice    string
		date      string
		quotaUsed int
		billable  bool
		deferred  bool
	}{
		{
			// Notice end Tuesday 09:00 is after Tuesday's 08:00 opening: the
			// next Tuesday.
			name: "notice ends after the service day opens", received: "2026-11-29 09:00",
			plan: tuesdayPlan(OverQuotaNextMonth), used: &usage{},
			effective: "2026-11-29 09:00", notice: "2026-12-01 09:00", date: "2026-12-08", quotaUsed: 1,
		},
		{
			// Effective start Sunday 08:00; notice end Tuesday 08:00 is the
			// first opening itself.
			name: "notice ends exactly at the opening", received: "2026-11-29 07:30",
			plan: tuesdayPlan(OverQuotaNextMonth), used: &usage{},
			effective: "2026-11-29 08:00", notice: "2026-12-01 08:00", date: "2026-12-01", quotaUsed: 1,
		},
		{
			name: "quota use is reported", received: "2026-11-29 09:00",
			plan: tuesdayPlan(OverQuotaNextMonth), used: &usage{month: map[string]int{"2026-12": 3}},
			effective: "2026-11-29 09:00", notice: "2026-12-01 09:00", date: "2026-12-08", quotaUsed: 4,
		},
		{
			// The 11th IMAC of December under next_month: the first Tuesday
			// of January.
			name: "month full, next_month", received: "2026-11-29 09:00",
			plan: tuesdayPlan(OverQuotaNextMonth), used: &usage{month: map[string]int{"2026-12": 10}},
			effective: "2026-11-29 09:00", notice: "2026-12-01 09:00", date: "2027-01-05", quotaUsed: 1, deferred: true,
		},
		{
			name: "month full, next_month, next month also full", received: "2026-11-29 09:00",
			plan: tuesdayPlan(OverQuotaNextMonth), used: &usage{month: map[string]int{"2026-12": 10, "2027-01": 12}},
			effective: "2026-11-29 09:00", notice: "2026-12-01 09:00", date: "2027-02-02", quotaUsed: 1, deferred: true,
		},
		{
			// Same month full under billable: the normal date, 11 of 10.
			name: "month full, billable", received: "2026-11-29 09:00",
			plan: tuesdayPlan(OverQuotaBillable), used: &usage{month: map[string]int{"2026-12": 10}},
			effective: "2026-11-29 09:00", notice: "2026-12-01 09:00", date: "2026-12-08", quotaUsed: 11, billable: true,
		},
		{
			name: "first visit full", received: "2026-11-29 09:00",
			plan: tuesdayPlan(OverQuotaNextMonth), used: &usage{day: map[Date]int{{2026, 12, 8}: 5}, month: map[string]int{"2026-12": 5}},
			effective: "2026-11-29 09:00", notice: "2026-12-01 09:00", date: "2026-12-15", quotaUsed: 6,
		},
		{
			// December has quota but its remaining Tuesdays are full: January,
			// and that is a capacity move, not a quota deferral.
			name: "every visit of the month full", received: "2026-12-20 09:00",
			plan:      tuesdayPlan(OverQuotaNextMonth),
			used:      &usage{day: map[Date]int{{2026, 12, 29}: 5}, month: map[string]int{"2026-12": 5}},
			effective: "2026-12-20 09:00", notice: "2026-12-22 09:00", date: "2027-01-05", quotaUsed: 1,
		},
		{
			name: "billable and the visit full", received: "2026-11-29 09:00",
			plan:      tuesdayPlan(OverQuotaBillable),
			used:      &usage{day: map[Date]int{{2026, 12, 8}: 5}, month: map[string]int{"2026-12": 10}},
			effective: "2026-11-29 09:00", notice: "2026-12-01 09:00", date: "2026-12-15", quotaUsed: 11, billable: true,
		},
		{
			name: "unlimited plan", received: "2026-11-29 09:00",
			plan:      IMACPlan{ServiceDays: []time.Weekday{time.Tuesday}, Notice: Span{Days: 2}},
			used:      &usage{month: map[string]int{"2026-12": 99}, day: map[Date]int{{2026, 12, 8}: 99}},
			effective: "2026-11-29 09:00", notice: "2026-12-01 09:00", date: "2026-12-08", quotaUsed: 100,
		},
		{
			// Service day Sunday: Rosh Hashana (2026-09-13) is skipped, the eve
			// (2026-09-20) has hours and counts.
			name: "holiday service day skipped", received: "2026-09-09 10:00",
			plan:      IMACPlan{ServiceDays: []time.Weekday{time.Sunday}, Notice: Span{Days: 1}},
			used:      &usage{},
			effective: "2026-09-09 10:00", notice: "2026-09-10 10:00", date: "2026-09-20", quotaUsed: 1,
		},
		{
			name: "several service days, business-time notice", received: "2026-12-03 16:30",
			plan: IMACPlan{ServiceDays: []time.Weekday{time.Monday, time.Thursday}, Notice: Span{Dur: 4 * time.Hour}},
			used: &usage{},
			// Thursday 16:30-17:00, Friday 08:00-11:30.
			effective: "2026-12-03 16:30", notice: "2026-12-04 11:30", date: "2026-12-07", quotaUsed: 1,
		},
		{
			name: "no notice", received: "2026-12-01 07:00",
			plan:      IMACPlan{ServiceDays: []time.Weekday{time.Tuesday}},
			used:      &usage{},
			effective: "2026-12-01 08:00", notice: "2026-12-01 08:00", date: "2026-12-01", quotaUsed: 1,
		},
		{
			// 2026-11-30 22:30 UTC is Tuesday 00:30 in Jerusalem: December.
			name: "month counted in the calendar's zone", received: "2026-12-01 00:30",
			plan:      IMACPlan{ServiceDays: []time.Weekday{time.Tuesday}, MonthlyQuota: 2},
			used:      &usage{month: map[string]int{"2026-11": 2}},
			effective: "2026-12-01 08:00", notice: "2026-12-01 08:00", date: "2026-12-01", quotaUsed: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			received := at(t, c, tt.received)
			slot, err := ScheduleIMAC(c, received.UTC(), tt.plan, tt.used)
			if err != nil {
				t.Fatal(err)
			}
			sameInstant(t, "Received", slot.Received, received)
			sameInstant(t, "EffectiveStart", slot.EffectiveStart, at(t, c, tt.effective))
			sameInstant(t, "NoticeEnd", slot.NoticeEnd, at(t, c, tt.notice))
			want := IMACSlot{
				Received: slot.Received, EffectiveStart: slot.EffectiveStart, NoticeEnd: slot.NoticeEnd,
				Date: mustDate(t, tt.date), QuotaUsed: tt.quotaUsed, Quota: tt.plan.MonthlyQuota,
				Billable: tt.billable, Deferred: tt.deferred,
			}
			if slot != want {
				t.Errorf("slot = %+v\nwant   %+v", slot, want)
			}
			if tt.used.calls > 200 {
				t.Errorf("%d Usage calls", tt.used.calls)
			}
		})
	}
}

func TestScheduleIMACNoSlot(t *testing.T) {
	c := israelOffice(t)
	received := at(t, c, "2026-11-29 09:00")
	// Saturday is never a business day.
	_, err := ScheduleIMAC(c, received, IMACPlan{ServiceDays: []time.Weekday{time.Saturday}}, NoUsage{})
	if !errors.Is(err, ErrNoIMACSlot) || !strings.Contains(err.Error(), "no service day") {
		t.Errorf("Saturday service day: err = %v", err)
	}
	full := &usage{month: map[string]int{}}
	for d := mustDate(t, "2026-11-01"); d.Before(mustDate(t, "2029-01-01")); d = d.AddDays(28) {
		full.month[MonthKey(d)] = 10
	}
	_, err = ScheduleIMAC(c, received, tuesdayPlan(OverQuotaNextMonth), full)
	if !errors.Is(err, ErrNoIMACSlot) || !strings.Contains(err.Error(), "exhausted from 2026-12-08 to 2028-12-26") {
		t.Errorf("every month full: err = %v", err)
	}
	_, err = ScheduleIMAC(c, received, tuesdayPlan("overtime"), NoUsage{})
	if err == nil || !strings.Contains(err.Error(), `unknown over-quota policy "overtime"`) {
		t.Errorf("unknown policy: err = %v", err)
	}
}

func TestServiceDayCandidates(t *testing.T) {
	c := israelOffice(t)
	notice := at(t, c, "2026-09-08 09:00") // a Tuesday
	got := c.ServiceDayCandidates(notice, []time.Weekday{time.Sunday, time.Tuesday}, 5)
	var s []string
	for _, d := range got {
		s = append(s, d.String())
	}
	// Tuesday 2026-09-08 opened at 08:00, before the notice end; Sunday
	// 2026-09-13 is Rosh Hashana.
	want := []string{"2026-09-15", "2026-09-20", "2026-09-22", "2026-09-27", "2026-09-29"}
	if !slices.Equal(s, want) {
		t.Errorf("candidates = %v, want %v", s, want)
	}
	if got := c.ServiceDayCandidates(notice, nil, 3); len(got) != 0 {
		t.Errorf("no service days: %v", got)
	}
	all := c.IMACCandidates(notice, []time.Weekday{time.Tuesday})
	if first, last := all[0], all[len(all)-1]; first.String() != "2026-09-15" || last.String() != "2028-09-26" {
		t.Errorf("IMACCandidates from %v to %v, want 2026-09-15 to 2028-09-26", first, last)
	}
}

func TestIMACPlanValidate(t *testing.T) {
	if err := tuesdayPlan(OverQuotaBillable).Validate(); err != nil {
		t.Errorf("valid plan: %v", err)
	}
	bad := IMACPlan{
		ServiceDays:  []time.Weekday{time.Tuesday, time.Tuesday, 9},
		Notice:       Span{Days: 1, Dur: time.Hour},
		MonthlyQuota: -1,
		PerVisit:     -2,
		OverQuota:    "later",
	}
	err := bad.Validate()
	for _, want := range []string{"Tuesday listed twice", "service day 9", "notice: span has both", "monthly quota is negative",
		"per-visit capacity is negative", `over-quota policy "later"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, missing %q", err, want)
		}
	}
	if err := (IMACPlan{}).Validate(); err == nil || !strings.Contains(err.Error(), "no service days") {
		t.Errorf("empty plan: %v", err)
	}
}

func TestChooseIMAC(t *testing.T) {
	cands := []Date{{2026, 12, 29}, {2027, 1, 5}, {2027, 1, 12}}
	plan := IMACPlan{ServiceDays: []time.Weekday{time.Tuesday}, MonthlyQuota: 2, PerVisit: 1}
	u := &usage{month: map[string]int{"2026-12": 2, "2027-01": 1}, day: map[Date]int{{2027, 1, 5}: 1}}
	slot, err := ChooseIMAC(cands, plan, u)
	want := IMACSlot{Date: Date{2027, 1, 12}, QuotaUsed: 2, Quota: 2, Deferred: true}
	if err != nil || slot != want {
		t.Errorf("ChooseIMAC = %+v, %v; want %+v", slot, err, want)
	}
	if slot, err := ChooseIMAC(cands, plan, nil); err != nil || slot.Date != cands[0] || slot.QuotaUsed != 1 {
		t.Errorf("ChooseIMAC with nil Usage = %+v, %v", slot, err)
	}
	if _, err := ChooseIMAC(nil, plan, nil); !errors.Is(err, ErrNoIMACSlot) {
		t.Errorf("ChooseIMAC with no candidates: %v", err)
	}
}

package sla_test

import (
	"fmt"
	"time"

	"github.com/northwind-it/ticketgw/sla"
)

// israelOffice builds the SPEC §3 calendar from its configuration strings.
func israelOffice() *sla.Calendar {
	loc, err := time.LoadLocation("Asia/Jerusalem")
	if err != nil {
		panic(err)
	}
	c := &sla.Calendar{Name: "israel-office", Loc: loc, Holidays: map[sla.Date]sla.Hours{}}
	for day, hours := range map[string]string{
		"sun": "08:00-17:00", "mon": "08:00-12:00,13:00-17:00", "tue": "08:00-17:00",
		"wed": "08:00-17:00", "thu": "08:00-17:00", "fri": "08:00-12:00",
	} {
		wd, _ := sla.ParseWeekday(day)
		c.Week[wd], _ = sla.ParseHours(hours)
	}
	for date, hours := range map[string]string{"2026-09-13": "", "2026-09-20": "08:00-13:00", "2026-09-21": ""} {
		d, _ := sla.ParseDate(date)
		var h sla.Hours
		if hours != "" {
			h, _ = sla.ParseHours(hours)
		}
		c.Holidays[d] = h
	}
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

// The SPEC §7 acknowledgement: a high-priority fault (1h response, 8h
// resolution) received on Monday 30 November 2026 at 09:30.
func ExampleCompute() {
	c := israelOffice()
	resp, res := sla.Span{Dur: time.Hour}, sla.Span{Dur: 8 * time.Hour}
	received := time.Date(2026, 11, 30, 9, 30, 0, 0, c.Loc)

	dl := sla.Compute(c, received, sla.Target{Response: &resp, Resolution: &res}, 0.8)
	const layout = "Monday 2 January 2006, 15:04"
	fmt.Println("respond by", dl.ResponseDue.Format(layout))
	fmt.Println("resolve by", dl.ResolutionDue.Format(layout))
	fmt.Println("warn at   ", dl.ResponseWarn.Format(layout), "/", dl.ResolutionWarn.Format(layout))
	// Output:
	// respond by Monday 30 November 2026, 10:30
	// resolve by Tuesday 1 December 2026, 09:30
	// warn at    Monday 30 November 2026, 10:18 / Monday 30 November 2026, 16:54
}

// An IMAC received on Sunday morning with a Tuesday service day and two
// business days' notice.
func ExampleScheduleIMAC() {
	c := israelOffice()
	plan := sla.IMACPlan{
		ServiceDays:  []time.Weekday{time.Tuesday},
		Notice:       sla.Span{Days: 2},
		MonthlyQuota: 10,
		PerVisit:     5,
		OverQuota:    sla.OverQuotaNextMonth,
	}
	for _, hour := range []int{9, 7} {
		received := time.Date(2026, 11, 29, hour, 30, 0, 0, c.Loc)
		slot, err := sla.ScheduleIMAC(c, received, plan, sla.NoUsage{})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("received %s: notice ends %s, scheduled %s %s (IMAC %d of %d)\n",
			received.Format("Mon 15:04"), slot.NoticeEnd.Format("Mon 2 Jan 15:04"),
			slot.Date.Weekday(), slot.Date, slot.QuotaUsed, slot.Quota)
	}
	// Output:
	// received Sun 09:30: notice ends Tue 1 Dec 09:30, scheduled Tuesday 2026-12-08 (IMAC 1 of 10)
	// received Sun 07:30: notice ends Tue 1 Dec 08:00, scheduled Tuesday 2026-12-01 (IMAC 1 of 10)
}

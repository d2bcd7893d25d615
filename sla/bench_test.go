package sla

import (
	"testing"
	"time"
)

func BenchmarkAddBusiness(b *testing.B) {
	c := israelOffice(b)
	from := at(b, c, "2026-11-30 09:30")
	for _, bc := range []struct {
		name string
		sp   Span
	}{
		{"8h", Span{Dur: 8 * time.Hour}},
		{"5d", Span{Days: 5}},
		{"200h", Span{Dur: 200 * time.Hour}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if c.Add(from, bc.sp).IsZero() {
					b.Fatal("zero time")
				}
			}
		})
	}
}

func BenchmarkBusinessBetween(b *testing.B) {
	c := israelOffice(b)
	from, to := at(b, c, "2026-11-30 09:30"), at(b, c, "2026-12-08 11:00")
	for b.Loop() {
		c.BusinessBetween(from, to)
	}
}

func BenchmarkCompute(b *testing.B) {
	c := israelOffice(b)
	received := at(b, c, "2026-11-27 11:50").UTC()
	target := Target{Response: &Span{Dur: time.Hour}, Resolution: &Span{Days: 2}}
	for b.Loop() {
		if Compute(c, received, target, 0.8).ResolutionDue.IsZero() {
			b.Fatal("no deadline")
		}
	}
}

func BenchmarkScheduleIMAC(b *testing.B) {
	c := israelOffice(b)
	received := at(b, c, "2026-11-29 09:00")
	plan := tuesdayPlan(OverQuotaNextMonth)
	for b.Loop() {
		if _, err := ScheduleIMAC(c, received, plan, NoUsage{}); err != nil {
			b.Fatal(err)
		}
	}
}

package report

import (
	"testing"
	"time"
)

// BenchmarkBuild100k builds the review of the last of 8 quarters of a
// contract with about 100,000 tickets (about 960 a week).
func BenchmarkBuild100k(b *testing.B) {
	c := israelContract(b)
	c.IMAC.MonthlyQuota, c.IMAC.PerVisit = 1000, 0
	spec := genSpec{
		contract: c, from: mustDate(b, "2026-01-01"), to: mustDate(b, "2028-01-01"),
		weekly: [3]float64{420, 275, 105}, missShare: 0.05,
		changeOn: "2027-11-01", changeWhat: "new ERP",
		requesters: acmeRequesters, seed: 1,
		asOf: time.Date(2028, 1, 10, 12, 0, 0, 0, c.Calendar.Loc),
	}
	start := time.Now()
	tickets := generate(b, spec)
	b.Logf("generated %d tickets in %v", len(tickets), time.Since(start).Round(time.Millisecond))
	q := Quarter{Year: 2027, Q: 4}
	b.ReportAllocs()
	b.ResetTimer()
	var r *QBR
	for b.Loop() {
		var err error
		r, err = Build(Input{Contract: c, Quarter: q, Tickets: tickets, AsOf: spec.asOf})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(tickets)), "tickets")
	if r.Total.Count == 0 {
		b.Fatal("empty quarter")
	}
}

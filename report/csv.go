package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// RenderCSV writes every figure of q, one per row: section, label, metric,
// value. Durations are in business hours, rates and changes in percent;
// "n/a" where a figure does not exist.
func RenderCSV(w io.Writer, q *QBR) error {
	cw := csv.NewWriter(w)
	row := func(section, label, metric string, v any) {
		_ = cw.Write([]string{section, label, metric, csvValue(v)})
	}
	row("section", "label", "metric", "value")
	row("report", q.Contract.ID, "quarter", q.Quarter)
	row("report", q.Contract.ID, "start", q.Start)
	row("report", q.Contract.ID, "end", q.End)
	row("report", q.Contract.ID, "as_of", q.AsOf.Format(time.RFC3339))
	count := func(section string, c Count) {
		row(section, c.Key, "count", c.Count)
		row(section, c.Key, "previous", c.Previous)
		row(section, c.Key, "change", c.Delta)
		row(section, c.Key, "change_pct", c.Pct)
	}
	count("total", q.Total)
	for _, c := range q.ByCategory {
		count("category", c)
	}
	for _, c := range q.ByPriority {
		count("priority", c)
	}
	for _, m := range q.Matrix {
		for _, p := range q.ByPriority {
			row("category_priority", string(m.Category)+"/"+p.Key, "count", m.ByPriority[p.Key])
		}
	}
	bucket := func(section string, bs []Bucket) {
		for _, b := range bs {
			for _, c := range seriesNames[:sAll] {
				row(section, b.Key, c, b.ByCategory[c])
			}
			row(section, b.Key, "all", b.Total)
			if b.Days > 0 {
				row(section, b.Key, "days_in_quarter", b.Days)
			}
		}
	}
	bucket("month", q.Months)
	bucket("week", q.Weeks)
	bucket("site", q.Sites)
	for _, c := range q.SLA {
		for _, m := range []struct {
			k string
			m Measure
		}{{"response", c.Response}, {"resolution", c.Resolution}} {
			l := string(c.Category) + "/" + m.k
			row("sla", l, "met", m.m.Met)
			row("sla", l, "missed", m.m.Missed)
			row("sla", l, "not_yet_due", m.m.Pending)
			var rate *float64
			if m.m.Rate != nil {
				r := 100 * *m.m.Rate
				rate = &r
			}
			row("sla", l, "compliance_pct", rate)
			row("sla", l, "timed", m.m.Timed)
			row("sla", l, "median_hours", m.m.Median)
			row("sla", l, "p90_hours", m.m.P90)
		}
	}
	if u := q.IMAC; u != nil {
		for _, m := range u.Months {
			row("imac", m.Month, "requested", m.Requested)
			row("imac", m.Month, "scheduled", m.Scheduled)
			row("imac", m.Month, "deferred", m.Deferred)
			row("imac", m.Month, "billable", m.Billable)
			row("imac", m.Month, "quota", m.Quota)
			row("imac", m.Month, "exceeded", m.Exceeded)
		}
		row("imac", "quarter", "exceeded_months", u.ExceededMonths)
		row("imac", "quarter", "billable", u.Billable)
	}
	for i, r := range q.Requesters {
		row("requester", r.Key, "rank "+strconv.Itoa(i+1), r.Count)
	}
	for i, r := range q.Rules {
		row("rule", r.Key, "rank "+strconv.Itoa(i+1), r.Count)
	}
	row("reopened", "all", "events", q.Reopened.Events)
	row("reopened", "all", "tickets", q.Reopened.Tickets)
	row("misfiled", "fault_to_imac", "count", q.Misfiled.FaultToIMAC)
	row("misfiled", "fault_to_imac", "urgent_high", q.Misfiled.UrgentHigh)
	for _, c := range q.Changes {
		row("change", c.Date, c.Ticket, c.What)
	}
	for _, b := range q.Normal {
		row("normal_range", b.Category, "history_weeks", b.HistoryWeeks)
		if !b.Enough {
			row("normal_range", b.Category, "band", "not enough history")
			continue
		}
		row("normal_range", b.Category, "median", b.Median)
		row("normal_range", b.Category, "q1", b.Q1)
		row("normal_range", b.Category, "q3", b.Q3)
		row("normal_range", b.Category, "lo", b.Lo)
		row("normal_range", b.Category, "hi", b.Hi)
		for i, m := range b.Marks {
			if m != "" && m != MarkIn {
				row("normal_range", b.Category, q.Weeks[i].Key, m)
			}
		}
	}
	for _, e := range q.Episodes {
		l := e.Category + "/" + e.Start
		row("episode", l, "direction", e.Direction)
		row("episode", l, "weeks", e.Weeks)
		row("episode", l, "peak", e.Peak)
		row("episode", l, "back_from", e.BackFrom)
	}
	for i, f := range q.Findings {
		row("finding", strconv.Itoa(i+1), f.Kind, f.Text)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write report csv: %w", err)
	}
	return nil
}

func csvValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case *float64:
		if x == nil {
			return "n/a"
		}
		return strconv.FormatFloat(*x, 'f', 2, 64)
	case *Duration:
		if x == nil {
			return "n/a"
		}
		return strconv.FormatFloat(time.Duration(*x).Hours(), 'f', 2, 64)
	}
	return fmt.Sprint(v)
}

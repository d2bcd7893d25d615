package report

import (
	"math"
	"slices"
)

// Week marks against the normal range.
const (
	MarkAbove = "above"
	MarkBelow = "below"
	MarkIn    = "in"
)

// bands computes the normal range of each series from the trailing weeks,
// marks the quarter's weeks and finds the episodes outside the range.
func (b *builder) bands(q *QBR) {
	from := b.histFrom
	if b.earliest != math.MaxInt64 {
		from = max(from, weekOf(b.earliest, b.ws))
	}
	var hist [][nSeries]int
	if from < b.histTo {
		hist = b.hist[(from-b.histFrom)/7:]
	}
	// A week is judged when it lies wholly in the quarter and before AsOf.
	judged := make([]bool, len(q.Weeks))
	for i, w := range q.Weeks {
		end := dateOfNum(b.firstWeek + int64(7*i) + 7).In(b.loc)
		judged[i] = w.Days == 7 && !end.After(b.asOf)
	}
	q.Normal = make([]Band, 0, nSeries)
	q.Episodes = []Episode{}
	for s := range nSeries {
		band := Band{Category: seriesNames[s], HistoryWeeks: len(hist), History: make([]int, len(hist)),
			Marks: make([]string, len(q.Weeks))}
		for i, h := range hist {
			band.History[i] = h[s]
		}
		band.Enough = len(hist) >= b.p.MinHistoryWeeks
		if band.Enough {
			band.Q1, band.Median, band.Q3 = quartiles(band.History)
			half := max(b.p.BandK*(band.Q3-band.Q1), b.p.MinBandHalfWidth)
			band.Lo, band.Hi = max(band.Median-half, 0), band.Median+half
			for i, w := range q.Weeks {
				if !judged[i] {
					continue
				}
				v := float64(weekValue(w, s))
				switch {
				case v > band.Hi:
					band.Marks[i] = MarkAbove
				case v < band.Lo:
					band.Marks[i] = MarkBelow
				default:
					band.Marks[i] = MarkIn
				}
			}
			if s != sAll {
				q.Episodes = append(q.Episodes, b.episodes(q, band, s)...)
			}
		}
		q.Normal = append(q.Normal, band)
	}
}

func weekValue(w Bucket, s int) int {
	if s == sAll {
		return w.Total
	}
	return w.ByCategory[seriesNames[s]]
}

// episodes are the runs of weeks above (or below) the band. A run ends at
// the first week back in the range (BackFrom), at a run the other way, or
// at the end of the judged weeks (still outside).
func (b *builder) episodes(q *QBR, band Band, s int) []Episode {
	var out []Episode
	var cur *Episode
	closeRun := func(back, next string) {
		if cur != nil {
			cur.BackFrom, cur.Next = back, next
			out = append(out, *cur)
			cur = nil
		}
	}
	for i, m := range band.Marks {
		w := q.Weeks[i]
		v := weekValue(w, s)
		switch m {
		case MarkAbove, MarkBelow:
			if cur != nil && cur.Direction != m {
				closeRun("", m)
			}
			if cur == nil {
				cur = &Episode{Category: band.Category, Direction: m, Start: w.Key, Peak: v}
				cur.Changes = b.changesBefore(b.firstWeek + int64(7*i))
			}
			cur.Weeks++
			if (m == MarkAbove && v > cur.Peak) || (m == MarkBelow && v < cur.Peak) {
				cur.Peak = v
			}
		case MarkIn:
			closeRun(w.Key, MarkIn)
		default:
			closeRun("", "")
		}
	}
	closeRun("", "")
	return out
}

// changesBefore are the known changes dated from ChangeLookback days before
// the week starting on day n to the end of that week.
func (b *builder) changesBefore(n int64) []KnownChange {
	lo, hi := dateOfNum(n-int64(b.p.ChangeLookback)).String(), dateOfNum(n+6).String()
	var out []KnownChange
	for _, c := range b.changes {
		if c.Date >= lo && c.Date <= hi {
			out = append(out, c)
		}
	}
	return out
}

// quartiles are the first quartile, the median and the third quartile of
// xs by linear interpolation between order statistics (R's type 7).
func quartiles(xs []int) (q1, med, q3 float64) {
	s := make([]float64, len(xs))
	for i, x := range xs {
		s[i] = float64(x)
	}
	slices.Sort(s)
	return quantile(s, 0.25), quantile(s, 0.5), quantile(s, 0.75)
}

func quantile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	h := p * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"

	"github.com/northwind-it/ticketgw/sla"
)

// Inline SVG charts. Every chart is drawn left to right (time runs left to
// right in both languages); its text is escaped here, so the result is safe
// to embed as template.HTML.

const (
	colorFault   = "#c0392b"
	colorRequest = "#2e86c1"
	colorIMAC    = "#7d3c98"
	colorAll     = "#5d6d7e"
	colorBand    = "#d5f5e3"
	colorAbove   = "#e74c3c"
	colorBelow   = "#3498db"
	colorIn      = "#95a5a6"
	colorMuted   = "#d5d8dc"
	colorPrev    = "#aeb6bf"
	colorText    = "#2c3e50"
)

var seriesColor = map[string]string{"fault": colorFault, "request": colorRequest, "imac": colorIMAC, "all": colorAll}

type svg struct {
	b    strings.Builder
	w, h float64
}

func newSVG(w, h float64, title string) *svg {
	s := &svg{w: w, h: h}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="100%%" role="img" direction="ltr" font-family="Arial, 'Segoe UI', Tahoma, sans-serif" font-size="11">`, w, h)
	fmt.Fprintf(&s.b, `<title>%s</title>`, html.EscapeString(title))
	return s
}

func (s *svg) rect(x, y, w, h float64, fill string, extra string) {
	if w <= 0 || h < 0 {
		return
	}
	fmt.Fprintf(&s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"%s/>`, x, y, w, h, fill, extra)
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string, extra string) {
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"%s/>`, x1, y1, x2, y2, stroke, extra)
}

func (s *svg) text(x, y float64, anchor, fill, txt string, extra string) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s"%s>%s</text>`, x, y, anchor, fill, extra, html.EscapeString(txt))
}

func (s *svg) html() template.HTML {
	s.b.WriteString(`</svg>`)
	return template.HTML(s.b.String()) //nolint:gosec // every text is escaped above
}

// niceMax rounds v up to a readable axis maximum.
func niceMax(v float64) float64 {
	if v <= 4 {
		return 4
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= v {
			return m * mag
		}
	}
	return 10 * mag
}

// weeklyChart draws one series' weekly counts with its normal-range band,
// the weeks outside it and the known changes (numbered as in the change
// list).
func weeklyChart(q *QBR, band Band, g lang) template.HTML {
	const W, H, left, right, top, bottom = 680.0, 190.0, 34.0, 8.0, 12.0, 34.0
	s := newSVG(W, H, g.t("weekly")+": "+g.t(band.Category))
	n := len(q.Weeks)
	maxV := band.Hi
	for _, w := range q.Weeks {
		maxV = max(maxV, float64(weekValue(w, seriesIndex(band.Category))))
	}
	ymax := niceMax(maxV)
	pw, ph := W-left-right, H-top-bottom
	y := func(v float64) float64 { return top + ph - ph*v/ymax }
	slot := pw / float64(max(n, 1))
	// Axis and grid.
	for _, v := range []float64{0, ymax / 2, ymax} {
		s.line(left, y(v), W-right, y(v), "#eaecee", "")
		s.text(left-4, y(v)+4, "end", colorText, trimFloat(v), "")
	}
	if band.Enough {
		s.rect(left, y(band.Hi), pw, y(band.Lo)-y(band.Hi), colorBand, ` stroke="#82e0aa" stroke-dasharray="3,2"`)
		s.line(left, y(band.Median), W-right, y(band.Median), "#58d68d", ` stroke-width="1"`)
	}
	for i, w := range q.Weeks {
		v := float64(weekValue(w, seriesIndex(band.Category)))
		fill := seriesColor[band.Category]
		switch band.Marks[i] {
		case MarkAbove:
			fill = colorAbove
		case MarkBelow:
			fill = colorBelow
		case "":
			if band.Enough {
				fill = colorMuted
			}
		}
		x := left + float64(i)*slot + slot*0.15
		s.rect(x, y(v), slot*0.7, y(0)-y(v), fill, "")
		if v > 0 {
			s.text(x+slot*0.35, y(v)-2, "middle", colorText, trimFloat(v), ` font-size="9"`)
		}
		if i%2 == 0 || n <= 8 {
			s.text(x+slot*0.35, H-bottom+13, "middle", colorText, g.day(w.Key), ` font-size="9"`)
		}
	}
	// Known changes: a dashed line at the day, numbered.
	if n > 0 {
		first, err := sla.ParseDate(q.Weeks[0].Key)
		if err == nil {
			for k, c := range q.Changes {
				d, err := sla.ParseDate(c.Date)
				if err != nil || !c.InQuarter {
					continue
				}
				off := float64(dayNum(d)-dayNum(first)) / 7
				x := left + off*slot
				s.line(x, top, x, y(0), "#34495e", ` stroke-dasharray="4,3" stroke-width="1.2"`)
				s.text(x+3, top+9, "start", "#34495e", fmt.Sprintf("(%d)", k+1), ` font-weight="bold"`)
			}
		}
	}
	s.line(left, y(0), W-right, y(0), colorText, "")
	return s.html()
}

func seriesIndex(name string) int {
	for i, n := range seriesNames {
		if n == name {
			return i
		}
	}
	return sAll
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// mixChart draws this quarter's and last quarter's count per category.
func mixChart(q *QBR, g lang) template.HTML {
	const W, rowH, left, right, top = 680.0, 44.0, 110.0, 60.0, 8.0
	H := top + rowH*float64(len(q.ByCategory)) + 26
	s := newSVG(W, H, g.t("mix"))
	maxV := 1
	for _, c := range q.ByCategory {
		maxV = max(maxV, c.Count, c.Previous)
	}
	scale := (W - left - right) / float64(maxV)
	for i, c := range q.ByCategory {
		y0 := top + float64(i)*rowH
		s.text(left-8, y0+20, "end", colorText, g.t(c.Key), ` font-weight="bold"`)
		s.rect(left, y0+4, float64(c.Count)*scale, 16, seriesColor[c.Key], "")
		s.text(left+float64(c.Count)*scale+4, y0+16, "start", colorText, fmt.Sprintf("%d", c.Count), "")
		s.rect(left, y0+22, float64(c.Previous)*scale, 12, colorPrev, "")
		s.text(left+float64(c.Previous)*scale+4, y0+32, "start", "#566573", fmt.Sprintf("%d", c.Previous), ` font-size="9"`)
	}
	ly := H - 10
	s.rect(left, ly-9, 12, 10, colorAll, "")
	s.text(left+16, ly, "start", colorText, g.t("this_quarter")+" ("+q.Quarter+")", "")
	s.rect(left+200, ly-9, 12, 10, colorPrev, "")
	s.text(left+216, ly, "start", colorText, g.t("previous")+" ("+q.Previous+")", "")
	return s.html()
}

// slaChart draws the response and resolution compliance of each category
// with a measured figure, against the target.
func slaChart(q *QBR, g lang) template.HTML {
	type row struct {
		label string
		cat   string
		rate  float64
	}
	var rows []row
	for _, c := range q.SLA {
		for _, m := range []struct {
			k string
			m Measure
		}{{"response", c.Response}, {"resolution", c.Resolution}} {
			if m.m.Rate != nil {
				rows = append(rows, row{g.t(string(c.Category)) + " · " + g.t(m.k), string(c.Category), *m.m.Rate})
			}
		}
	}
	if len(rows) == 0 {
		return ""
	}
	const W, rowH, left, right, top = 680.0, 24.0, 170.0, 50.0, 8.0
	H := top + rowH*float64(len(rows)) + 20
	s := newSVG(W, H, g.t("sla"))
	pw := W - left - right
	for i, r := range rows {
		y0 := top + float64(i)*rowH
		s.text(left-8, y0+14, "end", colorText, r.label, "")
		s.rect(left, y0+3, pw, 15, "#f2f3f4", "")
		fill := seriesColor[r.cat]
		if r.rate < q.Params.Target {
			fill = colorAbove
		}
		s.rect(left, y0+3, pw*r.rate, 15, fill, "")
		s.text(left+pw*r.rate+4, y0+14, "start", colorText, pct(100*r.rate), "")
	}
	tx := left + pw*q.Params.Target
	s.line(tx, top, tx, H-18, colorText, ` stroke-dasharray="4,2"`)
	s.text(tx, H-6, "middle", colorText, g.t("target")+" "+pct(100*q.Params.Target), "")
	return s.html()
}

// imacChart draws each month's IMACs requested and scheduled against the
// quota, billable ones in red.
func imacChart(q *QBR, g lang) template.HTML {
	u := q.IMAC
	if u == nil {
		return ""
	}
	const W, H, left, right, top, bottom = 680.0, 170.0, 34.0, 120.0, 10.0, 26.0
	s := newSVG(W, H, g.t("imac_use"))
	maxV := float64(u.Quota)
	for _, m := range u.Months {
		maxV = max(maxV, float64(m.Requested), float64(m.Scheduled))
	}
	ymax := niceMax(maxV)
	pw, ph := W-left-right, H-top-bottom
	y := func(v float64) float64 { return top + ph - ph*v/ymax }
	slot := pw / float64(len(u.Months))
	for _, v := range []float64{0, ymax / 2, ymax} {
		s.line(left, y(v), left+pw, y(v), "#eaecee", "")
		s.text(left-4, y(v)+4, "end", colorText, trimFloat(v), "")
	}
	for i, m := range u.Months {
		x := left + float64(i)*slot
		s.rect(x+slot*0.12, y(float64(m.Requested)), slot*0.3, y(0)-y(float64(m.Requested)), colorPrev, "")
		s.text(x+slot*0.27, y(float64(m.Requested))-2, "middle", colorText, fmt.Sprint(m.Requested), ` font-size="9"`)
		sx := x + slot*0.46
		s.rect(sx, y(float64(m.Scheduled)), slot*0.3, y(0)-y(float64(m.Scheduled)), colorIMAC, "")
		if m.Billable > 0 {
			s.rect(sx, y(float64(m.Scheduled)), slot*0.3, y(0)-y(float64(m.Billable)), colorAbove, "")
		}
		s.text(sx+slot*0.15, y(float64(m.Scheduled))-2, "middle", colorText, fmt.Sprint(m.Scheduled), ` font-size="9"`)
		s.text(x+slot/2, H-bottom+14, "middle", colorText, g.month(m.Month), "")
	}
	if u.Quota > 0 {
		s.line(left, y(float64(u.Quota)), left+pw, y(float64(u.Quota)), colorAbove, ` stroke-dasharray="5,3" stroke-width="1.5"`)
		s.text(left+pw+4, y(float64(u.Quota))+4, "start", colorAbove, g.t("quota")+" "+fmt.Sprint(u.Quota), "")
	}
	s.line(left, y(0), left+pw, y(0), colorText, "")
	ly := top + 14.0
	for _, l := range []struct{ c, k string }{{colorPrev, "requested"}, {colorIMAC, "scheduled"}, {colorAbove, "billable"}} {
		s.rect(left+pw+4, ly+18, 10, 10, l.c, "")
		s.text(left+pw+18, ly+27, "start", colorText, g.t(l.k), "")
		ly += 16
	}
	return s.html()
}

package report

import (
	"fmt"
	"html/template"
	"io"
	"strconv"

	"github.com/northwind-it/ticketgw/sla"
)

// RenderHTML writes q as one self-contained HTML document (no external
// assets, no scripts) with inline SVG charts, laid out for A4 printing. lang
// "he" writes it in Hebrew, right to left; "" uses the contract's language;
// anything else is English.
func RenderHTML(w io.Writer, q *QBR, lang string) error {
	if lang == "" {
		lang = q.Contract.Language
	}
	g := newLang(lang)
	v := htmlView{Q: q, G: g, Lang: g.code, Dir: "ltr"}
	if g.rtl {
		v.Dir = "rtl"
	}
	for _, f := range q.Findings {
		v.Findings = append(v.Findings, f.message(g, q))
	}
	for _, b := range q.Normal {
		wc := weekly{Band: b, Title: g.t(b.Category)}
		if b.Category == "all" || seriesTotal(q, b.Category) > 0 || b.Enough {
			wc.Chart = weeklyChart(q, b, g)
			if b.Enough {
				wc.Note = fmt.Sprintf(g.t("band_note"), trimFloat(q.Params.BandK), b.HistoryWeeks, trimFloat(q.Params.MinBandHalfWidth))
			} else {
				wc.Note = fmt.Sprintf(g.t("not_enough"), b.HistoryWeeks, q.Params.MinHistoryWeeks)
			}
			v.Weekly = append(v.Weekly, wc)
		}
	}
	for _, e := range q.Episodes {
		v.Episodes = append(v.Episodes, g.episode(&e, g.t("cat_"+e.Category)))
	}
	v.Mix, v.SLAChart, v.IMACChart = mixChart(q, g), slaChart(q, g), imacChart(q, g)
	if err := pageTemplate.Execute(w, v); err != nil {
		return fmt.Errorf("render report %s %s: %w", q.Contract.ID, q.Quarter, err)
	}
	return nil
}

func seriesTotal(q *QBR, cat string) int {
	for _, c := range q.ByCategory {
		if c.Key == cat {
			return c.Count + c.Previous
		}
	}
	return 0
}

type weekly struct {
	Band  Band
	Title string
	Chart template.HTML
	Note  string
}

type htmlView struct {
	Q         *QBR
	G         lang
	Lang, Dir string
	Findings  []string
	Weekly    []weekly
	Episodes  []string
	Mix       template.HTML
	SLAChart  template.HTML
	IMACChart template.HTML
}

var pageTemplate = template.Must(template.New("qbr").Funcs(template.FuncMap{
	"t":      func(g lang, k string) string { return g.t(k) },
	"day":    func(g lang, s string) string { return g.fullDay(s) },
	"month":  func(g lang, s string) string { return g.month(s) },
	"spct":   func(g lang, p *float64) string { return g.signedPct(p) },
	"hours":  func(g lang, d *Duration) string { return g.hours(d) },
	"signed": signed,
	"lastDay": func(end string) string {
		d, err := sla.ParseDate(end)
		if err != nil {
			return end
		}
		return d.AddDays(-1).String()
	},
	"rate": func(r *float64) string {
		if r == nil {
			return "—"
		}
		return pct(100 * *r)
	},
	"pct":  func(v float64) string { return pct(100 * v) },
	"inc":  func(i int) int { return i + 1 },
	"itoa": strconv.Itoa,
	"asOf": func(q *QBR) string { return q.AsOf.Format("2006-01-02 15:04") },
	"quota": func(g lang, n int) string {
		if n == 0 {
			return g.t("unlimited")
		}
		return strconv.Itoa(n)
	},
	"yesno": func(g lang, b bool) string {
		if b {
			return g.t("yes")
		}
		return g.t("no")
	},
	"prio": func(m map[string]int, p string) int { return m[p] },
	"site": func(g lang, s string) string {
		if s == OtherSite {
			return g.t(OtherSite)
		}
		return s
	},
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="{{.Lang}}" dir="{{.Dir}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{t .G "title"}} — {{.Q.Contract.Name}} — {{.Q.Quarter}}</title>
<style>
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: Arial, "Segoe UI", Tahoma, sans-serif; color: #2c3e50; margin: 0 auto; max-width: 186mm; font-size: 10.5pt; line-height: 1.4; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
h2 { font-size: 13pt; margin: 0 0 2mm; border-bottom: 1.5px solid #d5d8dc; padding-bottom: 1mm; }
h3 { font-size: 11pt; margin: 2mm 0 1mm; }
section { margin: 0 0 6mm; page-break-inside: avoid; break-inside: avoid; }
.chart { page-break-inside: avoid; break-inside: avoid; margin: 1mm 0 3mm; }
.meta { color: #566573; margin: 0 0 5mm; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 2mm; font-size: 9.5pt; }
th, td { border-bottom: 1px solid #eaecee; padding: 1mm 2mm; text-align: start; }
td.n, th.n { text-align: end; font-variant-numeric: tabular-nums; }
th { background: #f4f6f7; }
ul.findings li { margin: 0 0 1.5mm; }
.note { color: #566573; font-size: 9pt; margin: 0; }
.ltr { direction: ltr; unicode-bidi: isolate; }
footer { color: #808b96; font-size: 8.5pt; margin-top: 6mm; }
@media print { body { max-width: none; } a { color: inherit; text-decoration: none; } }
</style>
</head>
<body dir="{{.Dir}}">
<header>
<h1>{{t .G "title"}}: {{.Q.Contract.Name}}</h1>
<p class="meta">{{t .G "quarter"}} <span class="ltr">{{.Q.Quarter}}</span> · {{t .G "period"}} {{day .G .Q.Start}} – {{day .G (lastDay .Q.End)}} ({{t .G "previous"}}: <span class="ltr">{{.Q.Previous}}</span>) · {{t .G "as_of"}} <span class="ltr">{{asOf .Q}}</span> ({{.Q.Contract.Timezone}})</p>
</header>

<section id="findings">
<h2>{{t .G "findings"}}</h2>
{{if .Findings}}<ul class="findings">{{range .Findings}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>{{t .G "no_findings"}}</p>{{end}}
</section>

<section id="summary">
<h2>{{t .G "summary"}}</h2>
<table>
<tr><th>{{t .G "category"}}</th><th class="n">{{t .G "tickets"}}</th><th class="n">{{t .G "previous"}}</th><th class="n">{{t .G "change"}}</th><th class="n">%</th></tr>
{{range .Q.ByCategory}}<tr><td>{{t $.G .Key}}</td><td class="n">{{.Count}}</td><td class="n">{{.Previous}}</td><td class="n ltr">{{signed .Delta}}</td><td class="n ltr">{{spct $.G .Pct}}</td></tr>
{{end}}<tr><th>{{t .G "all"}}</th><th class="n">{{.Q.Total.Count}}</th><th class="n">{{.Q.Total.Previous}}</th><th class="n ltr">{{signed .Q.Total.Delta}}</th><th class="n ltr">{{spct .G .Q.Total.Pct}}</th></tr>
</table>
<h3>{{t .G "by_priority"}}</h3>
<table>
<tr><th>{{t .G "category"}}</th>{{range .Q.ByPriority}}<th class="n">{{t $.G .Key}}</th>{{end}}</tr>
{{range .Q.Matrix}}{{$m := .ByPriority}}<tr><td>{{t $.G (print .Category)}}</td>{{range $.Q.ByPriority}}<td class="n">{{prio $m .Key}}</td>{{end}}</tr>
{{end}}<tr><th>{{t .G "all"}}</th>{{range .Q.ByPriority}}<th class="n">{{.Count}}</th>{{end}}</tr>
<tr><td>{{t .G "previous"}}</td>{{range .Q.ByPriority}}<td class="n">{{.Previous}}</td>{{end}}</tr>
</table>
<h3>{{t .G "by_month"}}</h3>
<table>
<tr><th>{{t .G "month"}}</th><th class="n">{{t .G "fault"}}</th><th class="n">{{t .G "request"}}</th><th class="n">{{t .G "imac"}}</th><th class="n">{{t .G "all"}}</th></tr>
{{range .Q.Months}}<tr><td>{{month $.G .Key}}</td><td class="n">{{index .ByCategory "fault"}}</td><td class="n">{{index .ByCategory "request"}}</td><td class="n">{{index .ByCategory "imac"}}</td><td class="n">{{.Total}}</td></tr>
{{end}}</table>
</section>

<section id="mix">
<h2>{{t .G "mix"}}</h2>
<div class="chart" dir="ltr">{{.Mix}}</div>
</section>

<section id="weekly">
<h2>{{t .G "weekly"}}</h2>
{{range .Weekly}}<div class="chart"><h3>{{.Title}}</h3><div dir="ltr">{{.Chart}}</div><p class="note">{{.Note}}</p></div>
{{end}}{{if .Q.Changes}}<h3>{{t .G "changes"}}</h3>
<table><tr><th>#</th><th>{{t .G "date"}}</th><th>{{t .G "what"}}</th></tr>
{{range $i, $c := .Q.Changes}}<tr><td>({{inc $i}})</td><td>{{day $.G .Date}}</td><td>{{.What}}{{if .Ticket}} <span class="ltr">[{{.Ticket}}]</span>{{end}}</td></tr>
{{end}}</table>{{end}}
<h3>{{t .G "episodes"}}</h3>
{{if .Episodes}}<ul>{{range .Episodes}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>{{t .G "none"}}</p>{{end}}
</section>

<section id="sla">
<h2>{{t .G "sla"}}</h2>
{{if .SLAChart}}<div class="chart" dir="ltr">{{.SLAChart}}</div>{{end}}
<table>
<tr><th>{{t .G "category"}}</th><th></th><th class="n">{{t .G "met"}}</th><th class="n">{{t .G "missed"}}</th><th class="n">{{t .G "pending"}}</th><th class="n">{{t .G "compliance"}}</th><th class="n">{{t .G "median"}}</th><th class="n">{{t .G "p90"}}</th></tr>
{{range .Q.SLA}}<tr><td>{{t $.G (print .Category)}}</td><td>{{t $.G "response"}}</td><td class="n">{{.Response.Met}}</td><td class="n">{{.Response.Missed}}</td><td class="n">{{.Response.Pending}}</td><td class="n">{{rate .Response.Rate}}</td><td class="n">{{hours $.G .Response.Median}}</td><td class="n">{{hours $.G .Response.P90}}</td></tr>
<tr><td></td><td>{{t $.G "resolution"}}</td><td class="n">{{.Resolution.Met}}</td><td class="n">{{.Resolution.Missed}}</td><td class="n">{{.Resolution.Pending}}</td><td class="n">{{rate .Resolution.Rate}}</td><td class="n">{{hours $.G .Resolution.Median}}</td><td class="n">{{hours $.G .Resolution.P90}}</td></tr>
{{end}}</table>
<p class="note">{{t .G "target"}}: {{pct .Q.Params.Target}}. {{t .G "business_hours"}}</p>
</section>

{{with .Q.IMAC}}<section id="imac">
<h2>{{t $.G "imac_use"}}</h2>
<div class="chart" dir="ltr">{{$.IMACChart}}</div>
<table>
<tr><th>{{t $.G "month"}}</th><th class="n">{{t $.G "requested"}}</th><th class="n">{{t $.G "scheduled"}}</th><th class="n">{{t $.G "deferred"}}</th><th class="n">{{t $.G "billable"}}</th><th class="n">{{t $.G "quota"}}</th><th>{{t $.G "exceeded"}}</th></tr>
{{range .Months}}<tr><td>{{month $.G .Month}}</td><td class="n">{{.Requested}}</td><td class="n">{{.Scheduled}}</td><td class="n">{{.Deferred}}</td><td class="n">{{.Billable}}</td><td class="n">{{quota $.G .Quota}}</td><td>{{yesno $.G .Exceeded}}</td></tr>
{{end}}</table>
</section>{{end}}

<section id="people">
<h2>{{t .G "requesters"}}</h2>
{{if .Q.Requesters}}<table><tr><th>{{t .G "requester"}}</th><th class="n">{{t .G "tickets"}}</th></tr>
{{range .Q.Requesters}}<tr><td>{{if .Name}}{{.Name}} {{end}}<span class="ltr">&lt;{{.Key}}&gt;</span></td><td class="n">{{.Count}}</td></tr>
{{end}}</table>{{else}}<p>{{t .G "none"}}</p>{{end}}
<h2>{{t .G "rules"}}</h2>
{{if .Q.Rules}}<table><tr><th>{{t .G "rule"}}</th><th class="n">{{t .G "tickets"}}</th></tr>
{{range .Q.Rules}}<tr><td><span class="ltr">{{.Key}}</span></td><td class="n">{{.Count}}</td></tr>
{{end}}</table>{{else}}<p>{{t .G "none"}}</p>{{end}}
<p>{{t .G "reopened"}}: {{printf (t .G "reopened_text") .Q.Reopened.Events .Q.Reopened.Tickets}} {{printf (t .G "misfiled_text") .Q.Misfiled.FaultToIMAC .Q.Misfiled.UrgentHigh}}</p>
</section>

{{if .Q.Sites}}<section id="sites">
<h2>{{t .G "sites"}}</h2>
<table><tr><th>{{t .G "site"}}</th><th class="n">{{t .G "fault"}}</th><th class="n">{{t .G "request"}}</th><th class="n">{{t .G "imac"}}</th><th class="n">{{t .G "all"}}</th></tr>
{{range .Q.Sites}}<tr><td>{{site $.G .Key}}</td><td class="n">{{index .ByCategory "fault"}}</td><td class="n">{{index .ByCategory "request"}}</td><td class="n">{{index .ByCategory "imac"}}</td><td class="n">{{.Total}}</td></tr>
{{end}}</table>
</section>{{end}}

<footer>{{t .G "generated_by"}}</footer>
</body>
</html>
`

package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/northwind-it/ticketgw/domain"
)

// Finding kinds.
const (
	FindIMACQuota     = "imac_quota"     // quota exceeded in N of Of months
	FindCompliance    = "compliance"     // a compliance rate under the target
	FindRiseDriver    = "rise_driver"    // one requester or rule drove a rise
	FindMisfiled      = "misfiled_imac"  // IMACs arriving as faults
	FindChangeEpisode = "change_episode" // volume left the range after a known change
	FindEpisode       = "episode"        // volume left the range
)

// Finding is one plain-language finding with the figures it rests on.
type Finding struct {
	Kind     string `json:"kind"`
	Category string `json:"category,omitempty"`
	// Measure: response | resolution (compliance); requester | rule
	// (rise_driver).
	Measure string   `json:"measure,omitempty"`
	Name    string   `json:"name,omitempty"` // the requester or rule
	N       int      `json:"n,omitempty"`
	Of      int      `json:"of,omitempty"`
	Rate    float64  `json:"rate,omitempty"`
	Target  float64  `json:"target,omitempty"`
	Count   *Count   `json:"count,omitempty"`  // the category's change (rise_driver)
	Months  []string `json:"months,omitempty"` // imac_quota: the months exceeded
	Episode *Episode `json:"episode,omitempty"`
	// Text is the finding in English (RenderHTML writes it in the report's
	// language with Message).
	Text string `json:"text"`

	imacMonths []IMACMonth
}

// recommend derives the findings from the built figures.
func recommend(q *QBR, b *builder) []Finding {
	p := q.Params
	var out []Finding

	// Volume episodes, those after a known change first.
	for i := range q.Episodes {
		e := q.Episodes[i]
		f := Finding{Kind: FindEpisode, Category: e.Category, Episode: &e}
		if len(e.Changes) > 0 {
			f.Kind = FindChangeEpisode
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return boolRank(a.Kind != FindChangeEpisode) - boolRank(b.Kind != FindChangeEpisode)
	})

	// A rise driven by one requester or one rule.
	for i, c := range q.ByCategory {
		if q.Total.Previous == 0 || c.Delta < p.MinRise || (c.Pct != nil && *c.Pct < p.MinRisePct) {
			continue
		}
		c := c
		for _, d := range []struct {
			measure   string
			cur, prev map[string]int
		}{{"requester", b.reqByCat[i], b.prevReqByCat[i]}, {"rule", b.ruleByCat[i], b.prevRuleByCat[i]}} {
			name, inc := topIncrease(d.cur, d.prev)
			if inc > 0 && float64(inc) > p.DriverShare*float64(c.Delta) {
				out = append(out, Finding{Kind: FindRiseDriver, Category: c.Key, Measure: d.measure, Name: name,
					N: inc, Of: c.Delta, Count: &c})
			}
		}
	}

	// Compliance under the target.
	for _, s := range q.SLA {
		for _, m := range []struct {
			name string
			m    Measure
		}{{"response", s.Response}, {"resolution", s.Resolution}} {
			if m.m.Measured() < p.MinMeasured || m.m.Rate == nil || *m.m.Rate >= p.Target {
				continue
			}
			out = append(out, Finding{Kind: FindCompliance, Category: string(s.Category), Measure: m.name,
				N: m.m.Met, Of: m.m.Measured(), Rate: *m.m.Rate, Target: p.Target})
		}
	}

	// IMAC quota.
	if u := q.IMAC; u != nil && u.ExceededMonths > 0 {
		f := Finding{Kind: FindIMACQuota, N: u.ExceededMonths, Of: len(u.Months)}
		for _, m := range u.Months {
			if m.Exceeded {
				f.Months = append(f.Months, m.Month)
				f.imacMonths = append(f.imacMonths, m)
			}
		}
		out = append(out, f)
	}

	// IMACs arriving as faults.
	if m := q.Misfiled; m.FaultToIMAC >= p.MinMisfiled || (m.FaultToIMAC >= 2 && 5*m.FaultToIMAC >= m.IMACs) {
		out = append(out, Finding{Kind: FindMisfiled, Category: string(domain.IMAC), N: m.FaultToIMAC, Of: m.IMACs,
			Measure: fmt.Sprint(m.UrgentHigh)})
	}
	en := newLang("en")
	for i := range out {
		out[i].Text = out[i].message(en, q)
	}
	if out == nil {
		out = []Finding{}
	}
	return out
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// topIncrease is the key with the largest increase from prev to cur (ties:
// the smaller key).
func topIncrease(cur, prev map[string]int) (string, int) {
	best, inc := "", 0
	for k, v := range cur {
		d := v - prev[k]
		if d > inc || (d == inc && d > 0 && k < best) {
			best, inc = k, d
		}
	}
	return best, inc
}

// Message is the finding in language code ("he" or "en").
func (f Finding) Message(code string, q *QBR) string { return f.message(newLang(code), q) }

func (f Finding) message(g lang, q *QBR) string {
	cat := g.t("cat_" + f.Category)
	switch f.Kind {
	case FindEpisode, FindChangeEpisode:
		return g.episode(f.Episode, cat)
	case FindRiseDriver:
		c := f.Count
		share := pct(100 * float64(f.N) / float64(f.Of))
		whole := f.N > f.Of
		if g.rtl {
			by := "מהפונה " + ltr(f.Name)
			if f.Measure == "rule" {
				by = "מקריאות שהתאימו לכלל " + quoteHe(f.Name)
			}
			rise := "מאפס"
			if c.Pct != nil {
				rise = "ב־" + pct(*c.Pct)
			}
			if whole {
				return fmt.Sprintf("%s עלו %s (%d ← %d, %s), בעיקר %s (%s לבדן, יותר מכל העלייה).",
					cat, rise, c.Previous, c.Count, signed(c.Delta), by, signed(f.N))
			}
			return fmt.Sprintf("%s עלו %s (%d ← %d, %s), רובן %s (%s, %s מהעלייה).",
				cat, rise, c.Previous, c.Count, signed(c.Delta), by, signed(f.N), share)
		}
		by := "from requester " + f.Name
		if f.Measure == "rule" {
			by = "matched by the '" + f.Name + "' rule"
		}
		rise := "from none"
		if c.Pct != nil {
			rise = pct(*c.Pct)
		}
		if whole {
			by = "by requester " + f.Name
			if f.Measure == "rule" {
				by = "by the '" + f.Name + "' rule"
			}
			return fmt.Sprintf("%s rose %s (%d → %d, %s), driven %s (%s on its own, more than the whole rise).",
				capitalize(cat), rise, c.Previous, c.Count, signed(c.Delta), by, signed(f.N))
		}
		return fmt.Sprintf("%s rose %s (%d → %d, %s), mostly %s (%s, %s of the rise).",
			capitalize(cat), rise, c.Previous, c.Count, signed(c.Delta), by, signed(f.N), share)
	case FindCompliance:
		if g.rtl {
			return fmt.Sprintf("עמידה ביעד ה%s של %s: %s (%d מתוך %d) מול יעד של %s.",
				g.t(f.Measure), cat, pct(100*f.Rate), f.N, f.Of, pct(100*f.Target))
		}
		return fmt.Sprintf("%s %s compliance %s (%d of %d) against a %s target.",
			g.t("one_"+f.Category), f.Measure, pct(100*f.Rate), f.N, f.Of, pct(100*f.Target))
	case FindIMACQuota:
		var parts []string
		for _, m := range f.imacMonths {
			if g.rtl {
				parts = append(parts, fmt.Sprintf("%s: %d התבקשו, %d תוזמנו, %d נדחו, %d בחיוב, מכסה %d",
					g.month(m.Month), m.Requested, m.Scheduled, m.Deferred, m.Billable, m.Quota))
			} else {
				parts = append(parts, fmt.Sprintf("%s: %d requested, %d scheduled, %d deferred, %d billable, quota %d",
					g.month(m.Month), m.Requested, m.Scheduled, m.Deferred, m.Billable, m.Quota))
			}
		}
		figs := strings.Join(parts, "; ")
		if g.rtl {
			s := fmt.Sprintf("מכסת ה־IMAC נחרגה ב־%d מתוך %d חודשים (%s)", f.N, f.Of, figs)
			if f.N >= 2 {
				return s + ": כדאי לשקול תוכנית גדולה יותר."
			}
			return s + "."
		}
		s := fmt.Sprintf("IMAC quota exceeded in %d of %d %s (%s)", f.N, f.Of, g.plural(f.Of, "month_1", "month_n"), figs)
		if f.N >= 2 {
			return s + ": consider a larger plan."
		}
		return s + "."
	case FindMisfiled:
		if g.rtl {
			return fmt.Sprintf("%d קריאות שנפתחו כתקלה היו בפועל IMAC (%s מהן בעדיפות דחוף או גבוה; %d קריאות IMAC ברבעון): כדאי להזכיר למשתמשים את תהליך ה־IMAC (יום שירות קבוע, הודעה מראש).",
				f.N, f.Measure, f.Of)
		}
		return fmt.Sprintf("%d tickets opened as faults were IMACs (%s of them urgent or high; %d IMACs in the quarter): remind users of the IMAC process (fixed service day, advance notice).",
			f.N, f.Measure, f.Of)
	}
	return f.Kind
}

// episode describes an episode: "faults above normal for 3 weeks from 9 Aug
// (peak 14 a week), after "mail moved" (9 Aug); back to normal from 30 Aug".
func (g lang) episode(e *Episode, cat string) string {
	var s strings.Builder
	if g.rtl {
		dir := "מעל ה"
		if e.Direction == MarkBelow {
			dir = "מתחת ל"
		}
		peak := "peak"
		if e.Direction == MarkBelow {
			peak = "lowest"
		}
		fmt.Fprintf(&s, "%s היו %sטווח הנורמלי במשך %d %s החל מ־%s (%s: %d בשבוע)", cat, dir, e.Weeks,
			g.plural(e.Weeks, "week_1", "week_n"), g.day(e.Start), g.t(peak), e.Peak)
		if len(e.Changes) > 0 {
			s.WriteString(", אחרי " + g.changeList(e.Changes))
		}
		switch {
		case e.BackFrom != "":
			fmt.Fprintf(&s, "; חזרו לטווח הנורמלי החל מ־%s", g.day(e.BackFrom))
		case e.Next == "":
			s.WriteString("; עדיין מחוץ לטווח בסוף התקופה")
		}
		s.WriteString(".")
		if len(e.Changes) > 0 {
			s.WriteString(" כדאי לבדוק עם הלקוח אם השינוי הוא הסיבה.")
		}
		return s.String()
	}
	dir := "above"
	if e.Direction == MarkBelow {
		dir = "below"
	}
	peak := "peak"
	if e.Direction == MarkBelow {
		peak = "lowest"
	}
	fmt.Fprintf(&s, "%s %s normal for %d %s from %s (%s %d a week)", capitalize(cat), dir, e.Weeks,
		g.plural(e.Weeks, "week_1", "week_n"), g.day(e.Start), g.t(peak), e.Peak)
	if len(e.Changes) > 0 {
		s.WriteString(", after " + g.changeList(e.Changes))
	}
	switch {
	case e.BackFrom != "":
		fmt.Fprintf(&s, "; back to normal from %s", g.day(e.BackFrom))
	case e.Next == "":
		s.WriteString("; still outside the range at the end of the period")
	}
	s.WriteString(".")
	if len(e.Changes) > 0 {
		s.WriteString(" Worth asking whether the change caused it.")
	}
	return s.String()
}

func (g lang) changeList(cs []KnownChange) string {
	var parts []string
	for _, c := range cs {
		if g.rtl {
			parts = append(parts, fmt.Sprintf("%s (%s)", quoteHe(c.What), g.day(c.Date)))
		} else {
			parts = append(parts, fmt.Sprintf("%q (%s)", c.What, g.day(c.Date)))
		}
	}
	return strings.Join(parts, ", ")
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// ltr isolates a left-to-right token (an address, a rule name) in Hebrew
// text with the first-strong isolate characters.
func ltr(s string) string { return "\u2068" + s + "\u2069" }

func quoteHe(s string) string { return "״" + ltr(s) + "״" }

package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/sla"
)

// lang is the report's language: its labels and how it writes dates and
// numbers.
type lang struct {
	code string // en | he
	rtl  bool
	l    map[string]string
}

// newLang returns the language for code: "he" is Hebrew, anything else
// English.
func newLang(code string) lang {
	if code == "he" {
		return lang{code: "he", rtl: true, l: labelsHe}
	}
	return lang{code: "en", l: labelsEn}
}

// t is the label for key (the key itself when there is none).
func (g lang) t(key string) string {
	if s, ok := g.l[key]; ok {
		return s
	}
	if s, ok := labelsEn[key]; ok {
		return s
	}
	return key
}

var monthsEn = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
var monthsHe = [12]string{"ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני", "יולי", "אוגוסט", "ספטמבר", "אוקטובר", "נובמבר", "דצמבר"}

// day writes a YYYY-MM-DD date as "9 Aug" or "9 באוגוסט".
func (g lang) day(s string) string {
	d, err := sla.ParseDate(s)
	if err != nil {
		return s
	}
	if g.rtl {
		return fmt.Sprintf("%d ב%s", d.Day, monthsHe[d.Month-1])
	}
	return fmt.Sprintf("%d %s", d.Day, monthsEn[d.Month-1])
}

// fullDay writes "9 Aug 2026" or "9 באוגוסט 2026".
func (g lang) fullDay(s string) string {
	d, err := sla.ParseDate(s)
	if err != nil {
		return s
	}
	return fmt.Sprintf("%s %d", g.day(s), d.Year)
}

// month writes a YYYY-MM month as "Jul 2026" or "יולי 2026".
func (g lang) month(key string) string {
	d, err := sla.ParseDate(key + "-01")
	if err != nil {
		return key
	}
	if g.rtl {
		return fmt.Sprintf("%s %d", monthsHe[d.Month-1], d.Year)
	}
	return fmt.Sprintf("%s %d", monthsEn[d.Month-1], d.Year)
}

// pct writes a percentage with at most one decimal: "91 %", "94.6 %".
func pct(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " %"
}

// signedPct writes a change in percent, "n/a" for nil.
func (g lang) signedPct(p *float64) string {
	if p == nil {
		return g.t("n/a")
	}
	if *p > 0 {
		return "+" + pct(*p)
	}
	return pct(*p)
}

func signed(n int) string {
	if n > 0 {
		return "+" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// hours writes a business duration as "1.5 h" (or "—" for nil).
func (g lang) hours(d *Duration) string {
	if d == nil {
		return "—"
	}
	h := time.Duration(*d).Hours()
	s := strconv.FormatFloat(h, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + g.t("h")
}

// plural picks the singular or plural label for n.
func (g lang) plural(n int, one, many string) string {
	if n == 1 {
		return g.t(one)
	}
	return g.t(many)
}

var labelsEn = map[string]string{
	"title":          "Quarterly service review",
	"quarter":        "Quarter",
	"period":         "Period",
	"as_of":          "Data as of",
	"summary":        "Summary",
	"tickets":        "Tickets",
	"previous":       "Previous quarter",
	"change":         "Change",
	"n/a":            "n/a",
	"fault":          "Faults",
	"request":        "Requests",
	"imac":           "IMACs",
	"all":            "All tickets",
	"urgent":         "Urgent",
	"high":           "High",
	"normal":         "Normal",
	"low":            "Low",
	"category":       "Category",
	"priority":       "Priority",
	"by_priority":    "By category and priority",
	"by_month":       "By month",
	"month":          "Month",
	"weekly":         "Weekly volume and normal range",
	"week":           "Week of",
	"band":           "Normal range",
	"band_note":      "Normal range: median ± %s × IQR of the %d weeks before the quarter (floor 0, at least ± %s).",
	"not_enough":     "Not enough history for a normal range (%d weeks; %d needed).",
	"outside":        "Outside the range",
	"mix":            "Category mix: this quarter and last",
	"this_quarter":   "This quarter",
	"sla":            "SLA compliance",
	"response":       "Response",
	"resolution":     "Resolution",
	"met":            "Met",
	"missed":         "Missed",
	"pending":        "Not yet due",
	"compliance":     "Compliance",
	"median":         "Median",
	"p90":            "90th percentile",
	"target":         "Target",
	"h":              "h",
	"business_hours": "Times are business hours, pauses on the customer excluded.",
	"imac_use":       "IMAC use against the monthly quota",
	"requested":      "Requested",
	"scheduled":      "Scheduled",
	"billable":       "Billable",
	"deferred":       "Deferred",
	"quota":          "Quota",
	"exceeded":       "Exceeded",
	"unlimited":      "unlimited",
	"yes":            "yes",
	"no":             "no",
	"requesters":     "Busiest requesters",
	"requester":      "Requester",
	"rules":          "Rules that matched most",
	"rule":           "Rule",
	"sites":          "By site",
	"site":           "Site",
	"Other":          "Other",
	"changes":        "Known changes",
	"date":           "Date",
	"what":           "Change",
	"reopened":       "Reopened",
	"reopened_text":  "%d reopenings on %d tickets.",
	"misfiled_text":  "%d tickets opened as faults were IMACs (%d of them urgent or high).",
	"findings":       "Findings and recommendations",
	"no_findings":    "Nothing stands out this quarter.",
	"none":           "None.",
	"count":          "Count",
	"episodes":       "Weeks outside the normal range",
	"generated_by":   "Generated by the ticket gateway from the recorded tickets and events.",
	"week_1":         "week",
	"week_n":         "weeks",
	"month_1":        "month",
	"month_n":        "months",
	"cat_fault":      "faults", "cat_request": "requests", "cat_imac": "IMACs",
	"one_fault": "Fault", "one_request": "Request", "one_imac": "IMAC",
	"peak": "peak", "lowest": "lowest",
}

var labelsHe = map[string]string{
	"title":          "סקירת שירות רבעונית",
	"quarter":        "רבעון",
	"period":         "תקופה",
	"as_of":          "נתונים נכון ל־",
	"summary":        "סיכום",
	"tickets":        "קריאות",
	"previous":       "רבעון קודם",
	"change":         "שינוי",
	"n/a":            "לא רלוונטי",
	"fault":          "תקלות",
	"request":        "בקשות",
	"imac":           "IMAC",
	"all":            "כל הקריאות",
	"urgent":         "דחוף",
	"high":           "גבוה",
	"normal":         "רגיל",
	"low":            "נמוך",
	"category":       "סוג",
	"priority":       "עדיפות",
	"by_priority":    "לפי סוג ועדיפות",
	"by_month":       "לפי חודש",
	"month":          "חודש",
	"weekly":         "נפח שבועי וטווח נורמלי",
	"week":           "שבוע מ־",
	"band":           "טווח נורמלי",
	"band_note":      "טווח נורמלי: חציון ± %s × IQR של %d השבועות שלפני הרבעון (לא פחות מ־0, לפחות ± %s).",
	"not_enough":     "אין מספיק היסטוריה לטווח נורמלי (%d שבועות; נדרשים %d).",
	"outside":        "מחוץ לטווח",
	"mix":            "התפלגות סוגים: הרבעון והרבעון הקודם",
	"this_quarter":   "הרבעון",
	"sla":            "עמידה ב־SLA",
	"response":       "מענה",
	"resolution":     "פתרון",
	"met":            "עמד",
	"missed":         "לא עמד",
	"pending":        "טרם הגיע המועד",
	"compliance":     "עמידה",
	"median":         "חציון",
	"p90":            "אחוזון 90",
	"target":         "יעד",
	"h":              "ש׳",
	"business_hours": "הזמנים בשעות עבודה, ללא זמן המתנה ללקוח.",
	"imac_use":       "ניצול IMAC מול המכסה החודשית",
	"requested":      "התבקשו",
	"scheduled":      "תוזמנו",
	"billable":       "בחיוב",
	"deferred":       "נדחו",
	"quota":          "מכסה",
	"exceeded":       "חריגה",
	"unlimited":      "ללא הגבלה",
	"yes":            "כן",
	"no":             "לא",
	"requesters":     "הפונים הפעילים ביותר",
	"requester":      "פונה",
	"rules":          "הכללים שהתאימו הכי הרבה",
	"rule":           "כלל",
	"sites":          "לפי אתר",
	"site":           "אתר",
	"Other":          "אחר",
	"changes":        "שינויים ידועים",
	"date":           "תאריך",
	"what":           "שינוי",
	"reopened":       "נפתחו מחדש",
	"reopened_text":  "%d פתיחות מחדש ב־%d קריאות.",
	"misfiled_text":  "%d קריאות שנפתחו כתקלה היו בפועל IMAC (%d מהן בעדיפות דחוף או גבוה).",
	"findings":       "ממצאים והמלצות",
	"no_findings":    "אין ממצאים חריגים ברבעון זה.",
	"none":           "אין.",
	"count":          "מספר",
	"episodes":       "שבועות מחוץ לטווח הנורמלי",
	"generated_by":   "הופק על ידי שער הקריאות מתוך הקריאות והאירועים שנרשמו.",
	"week_1":         "שבוע",
	"week_n":         "שבועות",
	"month_1":        "חודש",
	"month_n":        "חודשים",
	"cat_fault":      "תקלות", "cat_request": "בקשות", "cat_imac": "קריאות IMAC",
	"one_fault": "תקלות", "one_request": "בקשות", "one_imac": "IMAC",
	"peak": "שיא", "lowest": "שפל",
}

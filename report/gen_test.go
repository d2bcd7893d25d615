package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
)

// A deterministic generator of ticket histories for the tests: tickets
// arrive on business days at a weekly rate per category, get their
// deadlines from the contract's SLA exactly as the pipeline computes them,
// and a history of events (response, pending and resumption, resolution,
// reopening, recategorisation, #change) in the shapes the service records.

func mustHours(tb testing.TB, s string) sla.Hours {
	tb.Helper()
	h, err := sla.ParseHours(s)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func mustDate(tb testing.TB, s string) sla.Date {
	tb.Helper()
	d, err := sla.ParseDate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func span(d time.Duration) *sla.Span { return &sla.Span{Dur: d} }
func days(n int) *sla.Span           { return &sla.Span{Days: n} }

// israelContract is SPEC §3's acme: a Sunday–Thursday calendar with a short
// Friday, Hebrew, sites, a known change and an IMAC plan.
func israelContract(tb testing.TB) *rules.Contract {
	loc, err := time.LoadLocation("Asia/Jerusalem")
	if err != nil {
		tb.Fatal(err)
	}
	cal := &sla.Calendar{Name: "israel-office", Loc: loc, Holidays: map[sla.Date]sla.Hours{
		mustDate(tb, "2026-09-13"): nil, mustDate(tb, "2026-09-20"): mustHours(tb, "08:00-13:00"), mustDate(tb, "2026-09-21"): nil,
	}}
	cal.Week[time.Sunday] = mustHours(tb, "08:00-17:00")
	cal.Week[time.Monday] = mustHours(tb, "08:00-12:00,13:00-17:00")
	cal.Week[time.Tuesday] = mustHours(tb, "08:00-17:00")
	cal.Week[time.Wednesday] = mustHours(tb, "08:00-17:00")
	cal.Week[time.Thursday] = mustHours(tb, "08:00-17:00")
	cal.Week[time.Friday] = mustHours(tb, "08:00-12:00")
	return &rules.Contract{
		ID: "acme", Name: "ACME Ltd", Prefix: "ACME", Domains: []string{"acme.co.il"},
		Calendar: cal, CalendarName: "israel-office", Language: "he",
		Sites:   map[string]string{"branch.acme.co.il": "Haifa branch", "yossi.acme@gmail.com": "Management"},
		Changes: []rules.Change{{Date: mustDate(tb, "2026-08-09"), What: "mail moved to Microsoft 365"}},
		SLA: rules.SLA{WarnAt: 0.8, Targets: map[domain.Category]map[domain.Priority]sla.Target{
			domain.Fault: {
				domain.Urgent: {Response: span(30 * time.Minute), Resolution: span(4 * time.Hour)},
				domain.High:   {Response: span(time.Hour), Resolution: span(8 * time.Hour)},
				domain.Normal: {Response: span(2 * time.Hour), Resolution: days(2)},
				domain.Low:    {Response: span(4 * time.Hour), Resolution: days(5)},
			},
			domain.Request: {domain.Normal: {Response: span(4 * time.Hour), Resolution: days(3)}},
		}},
		IMAC: &sla.IMACPlan{ServiceDays: []time.Weekday{time.Tuesday}, Notice: sla.Span{Days: 2}, MonthlyQuota: 10, PerVisit: 5, OverQuota: sla.OverQuotaNextMonth},
	}
}

// londonContract is an English Monday–Friday contract without sites,
// changes or IMAC plan.
func londonContract(tb testing.TB) *rules.Contract {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		tb.Fatal(err)
	}
	cal := &sla.Calendar{Name: "uk-office", Loc: loc}
	for d := time.Monday; d <= time.Friday; d++ {
		cal.Week[d] = mustHours(tb, "09:00-17:30")
	}
	return &rules.Contract{
		ID: "globex", Name: "Globex plc", Prefix: "GLX", Domains: []string{"globex.example"},
		Calendar: cal, CalendarName: "uk-office", Language: "en",
		SLA: rules.SLA{WarnAt: 0.8, Targets: map[domain.Category]map[domain.Priority]sla.Target{
			domain.Fault:   {domain.Normal: {Response: span(time.Hour), Resolution: span(8 * time.Hour)}},
			domain.Request: {domain.Normal: {Response: span(4 * time.Hour), Resolution: days(3)}},
		}},
	}
}

// genSpec describes a history to generate.
type genSpec struct {
	contract *rules.Contract
	from, to sla.Date   // tickets opened on days in [from, to)
	weekly   [3]float64 // mean tickets a week: fault, request, imac
	// faultBoost multiplies the fault rate on day d (the spike after a
	// change); nil: 1.
	faultBoost func(d sla.Date) float64
	// missShare is roughly the share of tickets answered late.
	missShare float64
	// changeOn, when set, records a staff #change on the first ticket opened
	// on or after it.
	changeOn   string
	changeWhat string
	requesters []domain.Address
	seed       uint64
	// asOf: tickets get no events after it.
	asOf time.Time
}

// generate produces the tickets and events of spec.
func generate(tb testing.TB, spec genSpec) []TicketWithEvents {
	tb.Helper()
	c := spec.contract
	cal := c.Calendar
	r := rand.New(rand.NewPCG(spec.seed, spec.seed^0x9e3779b97f4a7c15))
	var out []TicketWithEvents
	imacMonth := map[string]int{}
	seq := 0
	changeDone := spec.changeOn == ""
	for d := spec.from; d.Before(spec.to); d = d.AddDays(1) {
		ivs := cal.Intervals(d)
		if len(ivs) == 0 {
			continue
		}
		perDay := 1.0 / 5
		for ci, cat := range domain.Categories {
			rate := spec.weekly[ci] * perDay
			boost := 1.0
			if cat == domain.Fault && spec.faultBoost != nil {
				boost = spec.faultBoost(d)
			}
			n := poisson(r, rate*boost)
			for range n {
				seq++
				opened := randomInstant(r, ivs)
				if r.Float64() < 0.08 { // some mail arrives outside hours
					opened = d.In(cal.Loc).Add(time.Duration(r.IntN(24*60)) * time.Minute)
				}
				if opened.After(spec.asOf) {
					continue
				}
				tw := genTicket(r, spec, cat, boost > 1, seq, opened, imacMonth)
				if !changeDone && d.String() >= spec.changeOn && len(tw.Events) > 1 {
					at := tw.Events[1].At
					tw.Events = append(tw.Events, domain.Event{Kind: domain.EventChanged, At: at.Add(time.Minute), Actor: "tech@northwind-it.example",
						Data: map[string]string{"change": spec.changeWhat, "commands": "#change " + spec.changeWhat}})
					changeDone = true
				}
				out = append(out, tw)
			}
		}
	}
	return out
}

func poisson(r *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func randomInstant(r *rand.Rand, ivs []sla.Interval) time.Time {
	iv := ivs[r.IntN(len(ivs))]
	return iv.Start.Add(time.Duration(r.Int64N(int64(iv.Duration()/time.Minute))) * time.Minute)
}

func genTicket(r *rand.Rand, spec genSpec, cat domain.Category, spike bool, seq int, opened time.Time, imacMonth map[string]int) TicketWithEvents {
	c := spec.contract
	cal := c.Calendar
	prio := domain.Normal
	if cat == domain.Fault {
		switch x := r.Float64(); {
		case x < 0.05:
			prio = domain.Urgent
		case x < 0.35:
			prio = domain.High
		case x < 0.9:
			prio = domain.Normal
		default:
			prio = domain.Low
		}
	}
	// One IMAC in eight arrives as a high fault and is recategorised.
	openedCat, openedPrio := cat, prio
	misfiled := cat == domain.IMAC && r.IntN(8) == 0
	if misfiled {
		openedCat, openedPrio = domain.Fault, domain.High
	}
	rule := map[domain.Category]string{domain.Fault: "outage", domain.Request: "default", domain.IMAC: "onboarding"}[openedCat]
	if openedCat == domain.Fault && (spike && r.Float64() < 0.8 || r.Float64() < 0.15) {
		rule = "email"
	}
	rulesList := []string{rule}
	if openedCat == domain.Fault && r.IntN(4) == 0 {
		rulesList = append(rulesList, "vip")
	}
	req := spec.requesters[weightedIndex(r, len(spec.requesters))]
	t := domain.Ticket{
		ID: fmt.Sprintf("%s-%04d", c.Prefix, seq), Contract: c.ID, Category: cat, Priority: prio, Status: domain.StatusOpen,
		Subject: fmt.Sprintf("ticket %d", seq), Requester: req, Rules: rulesList, MessageID: fmt.Sprintf("m%d@%s", seq, c.ID),
		Opened: opened,
	}
	tg, hasTarget := c.SLA.Target(openedCat, openedPrio)
	var dl sla.Deadlines
	if hasTarget {
		dl = sla.Compute(cal, opened, tg, c.SLA.WarnAt)
	} else {
		dl = sla.Deadlines{EffectiveStart: cal.NextOpening(opened)}
	}
	if misfiled {
		dl = sla.Deadlines{EffectiveStart: dl.EffectiveStart} // IMACs have no SLA targets here
	}
	t.EffectiveStart, t.ResponseDue, t.ResolutionDue = dl.EffectiveStart, dl.ResponseDue, dl.ResolutionDue
	evs := []domain.Event{{Kind: domain.EventOpened, At: opened, MessageID: t.MessageID, Actor: req.Addr,
		Data: map[string]string{"category": string(openedCat), "priority": string(openedPrio), "rules": strings.Join(rulesList, ","), "refers_to": ""}}}

	if cat == domain.IMAC && c.IMAC != nil {
		_, noticeEnd, _ := sla.NoticeEnd(cal, opened, *c.IMAC)
		for day := range cal.ServiceDays(noticeEnd, c.IMAC.ServiceDays) {
			k := day.MonthKey()
			if imacMonth[k] >= c.IMAC.MonthlyQuota {
				t.IMACDeferred = true
				continue
			}
			imacMonth[k]++
			t.IMACDate, t.IMACQuotaUse, t.IMACQuota = day.String(), imacMonth[k], c.IMAC.MonthlyQuota
			break
		}
	}

	// Response: a share of the target, late for about missShare of tickets.
	respTarget := 2 * time.Hour
	if !dl.ResponseDue.IsZero() {
		respTarget = cal.BusinessBetween(dl.EffectiveStart, dl.ResponseDue)
	}
	f := 0.1 + 0.8*r.Float64()
	if r.Float64() < spec.missShare {
		f = 1.05 + r.Float64()
	}
	at := cal.AddBusiness(dl.EffectiveStart, time.Duration(f*float64(respTarget)).Truncate(time.Minute))
	if at.After(spec.asOf) {
		return TicketWithEvents{Ticket: t, Events: evs}
	}
	resp := domain.Event{Kind: domain.EventResponse, At: at, Actor: "tech@northwind-it.example", Data: map[string]string{"thread": "tag"}}
	if misfiled {
		resp.Data["category"] = string(domain.IMAC)
		resp.Data["commands"] = "#category imac"
	}
	evs = append(evs, resp)
	t.FirstResponse = at
	cur := at

	// Sometimes pending on the customer, resumed by their reply.
	if r.IntN(10) == 0 {
		pend := cal.AddBusiness(cur, 30*time.Minute)
		resume := cal.AddBusiness(pend, time.Duration(1+r.IntN(8))*time.Hour)
		if resume.After(spec.asOf) {
			t.Status, t.PausedAt = domain.StatusPending, pend
			return TicketWithEvents{Ticket: t, Events: append(evs, domain.Event{Kind: domain.EventPending, At: pend, Actor: "tech@northwind-it.example"})}
		}
		paused := cal.BusinessBetween(pend, resume)
		evs = append(evs, domain.Event{Kind: domain.EventPending, At: pend, Actor: "tech@northwind-it.example", Data: map[string]string{"commands": "#pending"}},
			domain.Event{Kind: domain.EventFollowUp, At: resume, Actor: req.Addr, Data: map[string]string{"thread": "tag", "paused_business": paused.String()}})
		t.PausedBusiness += paused
		if !t.ResolutionDue.IsZero() {
			t.ResolutionDue = cal.AddBusiness(t.ResolutionDue, paused)
		}
		cur = resume
	}

	// Resolution: a share of the resolution target.
	resTarget := 16 * time.Hour
	if !dl.ResolutionDue.IsZero() {
		resTarget = cal.BusinessBetween(dl.EffectiveStart, dl.ResolutionDue)
	}
	g := 0.2 + 0.7*r.Float64()
	if r.Float64() < spec.missShare {
		g = 1.05 + r.Float64()
	}
	res := cal.AddBusiness(dl.EffectiveStart, time.Duration(g*float64(resTarget)).Truncate(time.Minute)+t.PausedBusiness)
	if !res.After(cur) {
		res = cal.AddBusiness(cur, 15*time.Minute)
	}
	if res.After(spec.asOf) {
		return TicketWithEvents{Ticket: t, Events: evs}
	}
	evs = append(evs, domain.Event{Kind: domain.EventResolved, At: res, Actor: "tech@northwind-it.example", Data: map[string]string{"commands": "#resolve"}})
	t.Status, t.Resolved = domain.StatusResolved, res

	// Some customers reopen; staff resolve again.
	if r.IntN(20) == 0 {
		re := cal.AddBusiness(res, 3*time.Hour)
		again := cal.AddBusiness(re, 2*time.Hour)
		if again.Before(spec.asOf) {
			evs = append(evs, domain.Event{Kind: domain.EventReopened, At: re, Actor: req.Addr, Data: map[string]string{"thread": "tag"}},
				domain.Event{Kind: domain.EventResolved, At: again, Actor: "tech@northwind-it.example", Data: map[string]string{"commands": "#resolve"}})
			t.Resolved = again
		}
	}
	return TicketWithEvents{Ticket: t, Events: evs}
}

// weightedIndex picks 0..n-1 with weights n, n-1, ..., 1 (the first
// requesters write most).
func weightedIndex(r *rand.Rand, n int) int {
	total := n * (n + 1) / 2
	x := r.IntN(total)
	for i := range n {
		w := n - i
		if x < w {
			return i
		}
		x -= w
	}
	return n - 1
}

var acmeRequesters = []domain.Address{
	{Name: "Dana Levi", Addr: "dana@acme.co.il"},
	{Name: "Avi Cohen", Addr: "avi@branch.acme.co.il"},
	{Name: "יוסי", Addr: "yossi.acme@gmail.com"},
	{Name: "Noa", Addr: "noa@acme.co.il"},
	{Name: "Reception", Addr: "reception@branch.acme.co.il"},
	{Name: "Moshe", Addr: "moshe@lab.branch.acme.co.il"},
	{Name: "Rina", Addr: "rina@acme.co.il"},
	{Name: "", Addr: "it-manager@acme.co.il"},
}

var globexRequesters = []domain.Address{
	{Name: "Hank Scorpio", Addr: "hank@globex.example"},
	{Name: "Frank", Addr: "frank@globex.example"},
	{Name: "Ops", Addr: "ops@globex.example"},
}

// acmeSpike is acme's history: Q1–Q3 2026, faults tripled for the three
// weeks after the mail move of 9 Aug 2026, back to normal from 30 Aug.
func acmeSpec(tb testing.TB) genSpec {
	c := israelContract(tb)
	spikeFrom, spikeTo := mustDate(tb, "2026-08-09"), mustDate(tb, "2026-08-30")
	return genSpec{
		contract: c, from: mustDate(tb, "2026-01-01"), to: mustDate(tb, "2026-10-01"),
		weekly: [3]float64{9, 6, 2},
		faultBoost: func(d sla.Date) float64 {
			if !d.Before(spikeFrom) && d.Before(spikeTo) {
				return 3
			}
			return 1
		},
		missShare: 0.06, changeOn: "2026-09-08", changeWhat: "firewall replaced",
		requesters: acmeRequesters, seed: 42,
		asOf: time.Date(2026, 10, 5, 12, 0, 0, 0, c.Calendar.Loc),
	}
}

// globexSpec is a contract that started in Q3 2026: no previous quarter and
// too little history for a normal range.
func globexSpec(tb testing.TB) genSpec {
	c := londonContract(tb)
	return genSpec{
		contract: c, from: mustDate(tb, "2026-07-06"), to: mustDate(tb, "2026-10-01"),
		weekly: [3]float64{4, 3, 0}, missShare: 0.15, requesters: globexRequesters, seed: 7,
		asOf: time.Date(2026, 10, 2, 9, 0, 0, 0, c.Calendar.Loc),
	}
}

package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/report"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// The demo's quarterly review (SPEC §8). A review needs history, and a demo
// has none, so SeedHistory stores a deterministic, generated one for a
// contract, through the store exactly as the pipeline and staff replies
// store tickets: three quarters of 2026 with a normal weekly volume, a fault
// spike in the three weeks after the contract's first known change (acme's
// "mail moved to Microsoft 365" of 9 August) that then returns to normal,
// staff overloaded meanwhile (late answers), more new employees from August
// (IMACs over the monthly quota, deferred to later months), IMACs that
// arrived as faults and were recategorised by staff (#category imac), a few
// tickets pending on the customer and reopened, and a staff #change in
// September.

// SampleContract is the contract whose review the demo writes.
const SampleContract = "acme"

// SampleQuarter is the quarter of the demo's review; SeedHistory covers it
// and the two before it.
var SampleQuarter = report.Quarter{Year: 2026, Q: 3}

// WriteSampleQBR stores the generated history of SampleContract under the
// World's key prefix (removed by World.Close) and writes its review of
// SampleQuarter, as `gateway report qbr` would, to dir as
// qbr-acme-2026-Q3.html (the page it returns the path of) and .csv. The
// review is as of the instant the quarterly schedule would make it: the
// first business day of the next quarter at 08:00.
//
// An empty dir writes into a new temporary directory: the demo must not
// litter the directory it is run from (a checkout, or the read-only working
// directory of the container image), and a fresh directory never overwrites
// anything.
func WriteSampleQBR(ctx context.Context, w *World, dir string) (htmlPath string, err error) {
	c := w.Config.ContractByID(SampleContract)
	if c == nil {
		return "", fmt.Errorf("sample review: no contract %q in the demo configuration", SampleContract)
	}
	st := store.New(w.Redis, w.Config.Redis.Prefix)
	if _, err := SeedHistory(ctx, st, c); err != nil {
		return "", err
	}
	due, ok := service.QBRDue(c.Calendar, SampleQuarter, 8*60)
	if !ok {
		return "", fmt.Errorf("sample review: calendar %s has no business day in the quarter after %s", c.CalendarName, SampleQuarter)
	}
	tickets, err := report.Load(ctx, st, c.ID)
	if err != nil {
		return "", err
	}
	r, err := report.Build(report.Input{Contract: c, Quarter: SampleQuarter, Tickets: tickets, AsOf: due})
	if err != nil {
		return "", err
	}
	files, err := service.RenderQBR(r, "")
	if err != nil {
		return "", err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ticketgw-demo-qbr-"); err != nil {
			return "", fmt.Errorf("sample review: %w", err)
		}
	}
	paths, err := service.WriteQBRFiles(dir, files)
	if err != nil {
		return "", err
	}
	return paths[0], nil
}

// The sample history's period and shape.
var (
	sampleFrom = sla.Date{Year: 2026, Month: time.January, Day: 1}
	sampleTo   = sla.Date{Year: 2026, Month: time.October, Day: 1} // exclusive
)

const (
	sampleSeed      = 20260809
	sampleSpikeWeek = 3 // weeks of the fault spike after the change
	sampleStaffDom  = "northwind-it.example"
)

// plannedTicket is one ticket of the history and what will happen to it.
type plannedTicket struct {
	cat, openedCat   domain.Category // final category; as the rules opened it
	prio, openedPrio domain.Priority
	opened           time.Time
	requester        domain.Address
	rules            []string
	subject          string
	tech             string
	// respShare and resShare are the shares of the response and resolution
	// targets the answer and the resolution took (over 1: late).
	respShare, resShare float64
	pauseHours          int    // pending on the customer for this many business hours (0: never)
	reopen              bool   // the customer reopens it once after resolution
	change              string // a staff #change recorded with the first response
}

// SeedHistory stores the generated history of contract c (see the top of
// this file) in st and returns how many tickets it created. It is
// deterministic, and idempotent: a ticket already stored (same Message-ID)
// is left as it is.
func SeedHistory(ctx context.Context, st *store.Store, c *rules.Contract) (int, error) {
	plan, err := planHistory(c)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range plan {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		created, err := storeTicket(ctx, st, c, i+1, &plan[i])
		if err != nil {
			return n, fmt.Errorf("sample history: %w", err)
		}
		if created {
			n++
		}
	}
	return n, nil
}

// planHistory draws the history of c: a pure function of c.
func planHistory(c *rules.Contract) ([]plannedTicket, error) {
	cal := c.Calendar
	if cal == nil {
		return nil, fmt.Errorf("sample history: contract %s has no calendar", c.ID)
	}
	reqs := sampleRequesters(c)
	if len(reqs) == 0 {
		return nil, fmt.Errorf("sample history: contract %s matches no domain or address to write from", c.ID)
	}
	r := rand.New(rand.NewPCG(sampleSeed, uint64(len(c.ID))))
	ws := report.WeekStartDay(cal)
	start := sampleFrom
	for start.Weekday() != ws {
		start = start.AddDays(1)
	}
	// The spike: the weeks from the one holding the contract's first change
	// in the period.
	var spikeFrom, spikeTo sla.Date
	for _, ch := range c.Changes {
		if !ch.Date.Before(start) && ch.Date.Before(sampleTo) && (spikeFrom.IsZero() || ch.Date.Before(spikeFrom)) {
			spikeFrom = ch.Date
		}
	}
	if !spikeFrom.IsZero() {
		for spikeFrom.Weekday() != ws {
			spikeFrom = spikeFrom.AddDays(-1)
		}
		spikeTo = spikeFrom.AddDays(7 * sampleSpikeWeek)
	}
	staffChange := sla.Date{Year: 2026, Month: time.September, Day: 8}
	changeDone := false

	// Weekly volumes vary, but evenly: each run of weeks takes every value
	// of its block once, in a random order, so that quarters without news
	// have the same totals and the normal range is a fair band.
	faultWeeks := blocks(r, []int{6, 7, 8, 9, 10})
	requestWeeks := blocks(r, []int{3, 4, 5, 6, 7})
	imacWeeks := blocks(r, []int{1, 2, 3})
	var plan []plannedTicket
	for w := start; w.Before(sampleTo); w = w.AddDays(7) {
		var days []sla.Date
		for d := w; d.Before(w.AddDays(7)) && d.Before(sampleTo); d = d.AddDays(1) {
			if cal.IsBusinessDay(d) {
				days = append(days, d)
			}
		}
		if len(days) == 0 {
			continue
		}
		spike := !spikeFrom.IsZero() && !w.Before(spikeFrom) && w.Before(spikeTo)
		faults := faultWeeks()
		if spike {
			faults = 3 * faults
		}
		imacs := imacWeeks()
		// From August the Haifa branch hires: one more IMAC a week, asked
		// for by the branch.
		hiring := w.Month >= time.August
		counts := [3]int{faults, requestWeeks(), imacs}
		for ci, cat := range domain.Categories {
			for range counts[ci] {
				day := days[r.IntN(len(days))]
				plan = append(plan, planTicket(r, c, cat, day, spike, reqs, ""))
			}
		}
		if hiring {
			day := days[r.IntN(len(days))]
			plan = append(plan, planTicket(r, c, domain.IMAC, day, false, reqs, "branch."))
		}
	}
	slices.SortStableFunc(plan, func(a, b plannedTicket) int { return a.opened.Compare(b.opened) })
	for i := range plan {
		if !changeDone && sla.DateOf(plan[i].opened.In(cal.Loc)).Compare(staffChange) >= 0 {
			plan[i].change, changeDone = "firewall replaced", true
		}
	}
	return plan, nil
}

var (
	faultSubjects   = []string{"Outlook keeps asking for my password", "לא מצליח להתחבר למייל", "Printer on the 2nd floor is not working", "אין אינטרנט בסניף", "VPN disconnects every few minutes", "המחשב לא נדלק"}
	requestSubjects = []string{"Please add Noa to the finance share", "בקשה להרשאה לתיקייה משותפת", "Need a second monitor", "להוסיף את רינה לרשימת התפוצה"}
	imacSubjects    = []string{"New employee starts Sunday", "עובד חדש מתחיל ביום ראשון", "Move desk for Rina", "התקנת תוכנה לעובדת חדשה"}
	techs           = []string{"dana.cohen", "amir", "lior"}
)

// planTicket draws one ticket of category cat opened on day.
// With a non-empty from, the requester is the first whose domain starts
// with it.
func planTicket(r *rand.Rand, c *rules.Contract, cat domain.Category, day sla.Date, spike bool, reqs []domain.Address, from string) plannedTicket {
	ivs := c.Calendar.Intervals(day)
	iv := ivs[r.IntN(len(ivs))]
	opened := iv.Start.Add(time.Duration(r.Int64N(int64(iv.Duration()/time.Minute))) * time.Minute)
	if r.IntN(12) == 0 { // some mail arrives outside hours
		opened = day.In(c.Calendar.Loc).Add(time.Duration(r.IntN(24*60)) * time.Minute)
	}
	p := plannedTicket{cat: cat, openedCat: cat, prio: domain.Normal, opened: opened, tech: techs[r.IntN(len(techs))] + "@" + sampleStaffDom}
	switch cat {
	case domain.Fault:
		switch x := r.Float64(); {
		case x < 0.05:
			p.prio = domain.Urgent
		case x < 0.35:
			p.prio = domain.High
		case x < 0.9:
			p.prio = domain.Normal
		default:
			p.prio = domain.Low
		}
		p.rules, p.subject = []string{"outage"}, faultSubjects[r.IntN(len(faultSubjects))]
		if spike && r.Float64() < 0.85 || !spike && r.Float64() < 0.1 {
			p.rules, p.subject = []string{"email"}, faultSubjects[r.IntN(2)]
		}
	case domain.Request:
		p.rules, p.subject = []string{"default"}, requestSubjects[r.IntN(len(requestSubjects))]
	case domain.IMAC:
		p.rules, p.subject = []string{"onboarding"}, imacSubjects[r.IntN(len(imacSubjects))]
	}
	p.openedPrio = p.prio
	// One IMAC in five arrives as a high fault ("the new employee cannot log
	// in") and staff recategorise it.
	if cat == domain.IMAC && r.IntN(5) == 0 {
		p.openedCat, p.openedPrio, p.rules = domain.Fault, domain.High, []string{"outage"}
	}
	// The busiest requesters write most; during the spike everybody does.
	if spike {
		p.requester = reqs[r.IntN(len(reqs))]
	} else {
		p.requester = reqs[weighted(r, len(reqs))]
	}
	if from != "" {
		for _, a := range reqs {
			if strings.HasPrefix(domainOf(a.Addr), from) {
				p.requester = a
				break
			}
		}
	}
	// Staff fall behind on faults while the spike lasts.
	lateResp, lateRes := 0.02, 0.03
	if spike && cat == domain.Fault {
		lateResp, lateRes = 0.15, 0.25
	}
	p.respShare = 0.1 + 0.7*r.Float64()
	if r.Float64() < lateResp {
		p.respShare = 1.1 + r.Float64()
	}
	p.resShare = 0.2 + 0.7*r.Float64()
	if r.Float64() < lateRes {
		p.resShare = 1.1 + r.Float64()
	}
	if r.IntN(10) == 0 {
		p.pauseHours = 1 + r.IntN(8)
	}
	p.reopen = r.IntN(25) == 0
	return p
}

// blocks returns a generator of the values of block, each run of
// len(block) calls returning every value once in a random order.
func blocks(r *rand.Rand, block []int) func() int {
	var cur []int
	return func() int {
		if len(cur) == 0 {
			cur = slices.Clone(block)
			r.Shuffle(len(cur), func(i, j int) { cur[i], cur[j] = cur[j], cur[i] })
		}
		v := cur[0]
		cur = cur[1:]
		return v
	}
}

// weighted picks 0..n-1 with weights n, n-1, ..., 1.
func weighted(r *rand.Rand, n int) int {
	x := r.IntN(n * (n + 1) / 2)
	for i := range n {
		if x < n-i {
			return i
		}
		x -= n - i
	}
	return n - 1
}

// sampleRequesters are the people of the customer who write: at its first
// domain and a branch subdomain of it, and at its exact addresses.
func sampleRequesters(c *rules.Contract) []domain.Address {
	var out []domain.Address
	if len(c.Domains) > 0 {
		d := c.Domains[0]
		out = append(out,
			domain.Address{Name: "Dana Levi", Addr: "dana@" + d},
			domain.Address{Name: "Avi Cohen", Addr: "avi@branch." + d},
			domain.Address{Name: "Noa", Addr: "noa@" + d},
			domain.Address{Name: "Reception", Addr: "reception@branch." + d},
			domain.Address{Name: "Rina", Addr: "rina@" + d},
		)
	}
	for i, a := range c.Addresses {
		out = slices.Insert(out, min(2*i+1, len(out)), domain.Address{Name: "יוסי", Addr: a})
	}
	if len(c.Domains) > 0 {
		out = append(out, domain.Address{Addr: "it-manager@" + c.Domains[0]})
	}
	return out
}

// storeTicket stores one planned ticket and its history, the way the
// pipeline opens a ticket and staff and customer replies change it.
func storeTicket(ctx context.Context, st *store.Store, c *rules.Contract, seq int, p *plannedTicket) (bool, error) {
	cal := c.Calendar
	msgID := fmt.Sprintf("sample-%04d.%s@%s", seq, c.ID, strings.TrimPrefix(domainOf(p.requester.Addr), "branch."))
	t := domain.Ticket{
		Contract: c.ID, Category: p.openedCat, Priority: p.openedPrio, Status: domain.StatusOpen,
		Subject: p.subject, Requester: p.requester, Rules: p.rules, MessageID: msgID, Opened: p.opened,
	}
	dl := sla.Deadlines{EffectiveStart: cal.NextOpening(p.opened)}
	if tg, ok := c.SLA.Target(p.openedCat, p.openedPrio); ok {
		dl = sla.Compute(cal, p.opened, tg, c.SLA.WarnAt)
	}
	t.EffectiveStart, t.ResponseDue, t.ResolutionDue, t.ResponseWarn, t.ResolutionWarn =
		dl.EffectiveStart, dl.ResponseDue, dl.ResolutionDue, dl.ResponseWarn, dl.ResolutionWarn
	nt := store.NewTicket{
		Ticket: t, Prefix: c.Prefix, DedupKey: "mid:" + msgID,
		Event: domain.Event{Kind: domain.EventOpened, At: p.opened, MessageID: msgID, Actor: p.requester.Addr,
			Data: map[string]string{"category": string(p.openedCat), "priority": string(p.openedPrio), "rules": strings.Join(p.rules, ","), "refers_to": ""}},
	}
	if p.openedCat == domain.IMAC && c.IMAC != nil {
		req, err := imacRequest(c, p.opened)
		if err != nil {
			return false, err
		}
		nt.IMAC = req
		nt.Ticket.IMACQuota = c.IMAC.MonthlyQuota
	}
	cur, created, err := st.CreateTicket(ctx, nt)
	if err != nil || !created {
		return false, err
	}
	step := 0
	update := func(at time.Time, ch store.Change) error {
		step++
		ch.DedupKey = "sample:" + cur.ID + ":" + strconv.Itoa(step)
		next, _, err := st.UpdateTicket(ctx, cur.ID, ch)
		if err != nil {
			return fmt.Errorf("%s at %s: %w", cur.ID, at.Format(time.RFC3339), err)
		}
		cur = next
		return nil
	}

	// The first response, a share of the response target (2 business hours
	// where there is none); a misfiled IMAC is recategorised with it.
	respTarget := 2 * time.Hour
	if !dl.ResponseDue.IsZero() {
		respTarget = cal.BusinessBetween(dl.EffectiveStart, dl.ResponseDue)
	}
	resp := cal.AddBusiness(dl.EffectiveStart, time.Duration(p.respShare*float64(respTarget)).Truncate(time.Minute))
	ev := domain.Event{Kind: domain.EventResponse, At: resp, Actor: p.tech, MessageID: fmt.Sprintf("staff-%04d-1@%s", seq, sampleStaffDom),
		Data: map[string]string{"thread": "tag"}}
	ch := store.Change{Mutate: func(x *domain.Ticket) error { x.FirstResponse = resp; return nil }}
	var cmds []string
	if p.cat != p.openedCat {
		cmds = append(cmds, "#category "+string(p.cat))
		ev.Data["category"] = string(p.cat)
		req, err := imacRequest(c, p.opened)
		if err != nil {
			return true, err
		}
		ch.IMAC = req
		ch.Mutate = func(x *domain.Ticket) error {
			x.FirstResponse, x.Category, x.Priority = resp, p.cat, p.prio
			// IMACs have no SLA targets in the plan: the deadlines go.
			x.ResponseDue, x.ResolutionDue, x.ResponseWarn, x.ResolutionWarn = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			return nil
		}
	}
	if p.change != "" {
		cmds = append(cmds, "#change "+p.change)
		ev.Data["change"] = p.change
	}
	if len(cmds) > 0 {
		ev.Data["commands"] = strings.Join(cmds, "; ")
	}
	ch.Event = &ev
	if err := update(resp, ch); err != nil {
		return true, err
	}
	at := resp

	// Pending on the customer, resumed by their reply.
	if p.pauseHours > 0 {
		pend := cal.AddBusiness(at, 30*time.Minute)
		if err := update(pend, store.Change{
			Event:  &domain.Event{Kind: domain.EventPending, At: pend, Actor: p.tech, Data: map[string]string{"commands": "#pending"}},
			Mutate: func(x *domain.Ticket) error { x.Status, x.PausedAt = domain.StatusPending, pend; return nil },
		}); err != nil {
			return true, err
		}
		resume := cal.AddBusiness(pend, time.Duration(p.pauseHours)*time.Hour)
		rt, _ := service.ResumeDeadlines(cal, cur, pend, resume)
		if err := update(resume, store.Change{
			Event: &domain.Event{Kind: domain.EventFollowUp, At: resume, Actor: p.requester.Addr,
				Data: map[string]string{"thread": "tag", "paused_business": (rt.PausedBusiness - cur.PausedBusiness).String()}},
			Mutate: func(x *domain.Ticket) error {
				x.Status, x.PausedAt, x.PausedBusiness = domain.StatusOpen, time.Time{}, rt.PausedBusiness
				x.ResponseDue, x.ResolutionDue, x.ResponseWarn, x.ResolutionWarn = rt.ResponseDue, rt.ResolutionDue, rt.ResponseWarn, rt.ResolutionWarn
				return nil
			},
		}); err != nil {
			return true, err
		}
		at = resume
	}

	// The resolution: a share of the resolution target; an IMAC on its
	// service day.
	var res time.Time
	switch {
	case cur.Category == domain.IMAC && cur.IMACDate != "":
		d, err := sla.ParseDate(cur.IMACDate)
		if err == nil {
			if open, ok := cal.FirstOpening(d); ok {
				res = open.Add(time.Duration(1+seq%4) * time.Hour)
			}
		}
	case !cur.ResolutionDue.IsZero():
		target := cal.BusinessBetween(cur.EffectiveStart, cur.ResolutionDue) - cur.PausedBusiness
		res = cal.AddBusiness(cur.EffectiveStart, time.Duration(p.resShare*float64(target)).Truncate(time.Minute)+cur.PausedBusiness)
	}
	if res.IsZero() {
		res = cal.AddBusiness(at, time.Duration(4+seq%20)*time.Hour)
	}
	if !res.After(at) {
		res = cal.AddBusiness(at, 15*time.Minute)
	}
	resolve := func(when time.Time) error {
		return update(when, store.Change{
			Event:  &domain.Event{Kind: domain.EventResolved, At: when, Actor: p.tech, Data: map[string]string{"commands": "#resolve"}},
			Mutate: func(x *domain.Ticket) error { x.Status, x.Resolved = domain.StatusResolved, when; return nil },
		})
	}
	if err := resolve(res); err != nil {
		return true, err
	}
	if p.reopen {
		re := cal.AddBusiness(res, 3*time.Hour)
		if err := update(re, store.Change{
			Event:  &domain.Event{Kind: domain.EventReopened, At: re, Actor: p.requester.Addr, Data: map[string]string{"thread": "tag"}},
			Mutate: func(x *domain.Ticket) error { x.Status, x.Resolved = domain.StatusOpen, time.Time{}; return nil },
		}); err != nil {
			return true, err
		}
		if err := resolve(cal.AddBusiness(re, 2*time.Hour)); err != nil {
			return true, err
		}
	}
	return true, nil
}

// imacRequest asks for the contract's next service day with quota and
// capacity after the notice, as the pipeline does.
func imacRequest(c *rules.Contract, opened time.Time) (*store.IMACRequest, error) {
	plan := c.IMAC
	if plan == nil {
		return nil, nil
	}
	_, noticeEnd, err := sla.NoticeEnd(c.Calendar, opened, *plan)
	if err != nil {
		return nil, fmt.Errorf("imac notice: %w", err)
	}
	cands := c.Calendar.IMACCandidates(noticeEnd, plan.ServiceDays)
	if len(cands) == 0 {
		return nil, errors.New("imac: no service day ahead")
	}
	return &store.IMACRequest{Candidates: cands, MonthlyQuota: plan.MonthlyQuota, PerVisit: plan.PerVisit,
		Policy: cmp.Or(plan.OverQuota, store.PolicyNextMonth)}, nil
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

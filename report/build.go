package report

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

// Series indexes: the three categories and every ticket.
const (
	sFault = iota
	sRequest
	sIMAC
	sAll
	nSeries
)

var seriesNames = [nSeries]string{"fault", "request", "imac", "all"}

func catIndex(c domain.Category) int {
	switch c {
	case domain.Fault:
		return sFault
	case domain.Request:
		return sRequest
	case domain.IMAC:
		return sIMAC
	}
	return -1
}

// counts is a per-series count.
type counts [nSeries]int

func (c *counts) add(cat int) {
	if cat >= 0 {
		c[cat]++
	}
	c[sAll]++
}

func (c counts) byCategory() map[string]int {
	return map[string]int{"fault": c[sFault], "request": c[sRequest], "imac": c[sIMAC]}
}

// Build computes the QBR of in.Contract for in.Quarter. It reads nothing but
// its input.
func Build(in Input) (*QBR, error) {
	c := in.Contract
	if c == nil {
		return nil, errors.New("build report: no contract")
	}
	if c.Calendar == nil {
		return nil, fmt.Errorf("build report for contract %q: no calendar", c.ID)
	}
	if in.Quarter.Q < 1 || in.Quarter.Q > 4 {
		return nil, fmt.Errorf("build report for contract %q: invalid quarter %v", c.ID, in.Quarter)
	}
	b := newBuilder(in)
	for i := range in.Tickets {
		b.ticket(&in.Tickets[i])
	}
	return b.finish(), nil
}

type builder struct {
	in   Input
	p    Params
	cal  *sla.Calendar
	loc  *time.Location
	asOf time.Time
	ws   time.Weekday

	qs, qe, ps, pe    time.Time
	qStartN, qEndN    int64
	firstWeek         int64
	nWeeks            int
	histFrom          int64 // day number of the first history week
	histTo            int64 // = firstWeek
	monthStartN       [4]int64
	monthKeys         [3]string
	quarterMonthByKey map[string]int
	hist              [][nSeries]int
	earliest          int64 // earliest opened day seen
	sites             map[string]string
	siteNames         []string

	cur, prev         counts
	curPrio, prevPrio map[domain.Priority]int
	matrix            [3]map[string]int
	months            [3]counts
	weeks             []counts
	siteCounts        map[string]*counts
	requesters        map[string]int
	requesterName     map[string]string
	rules             map[string]int
	// per category (index) per key: previous and current counts, for drivers
	reqByCat, prevReqByCat   [3]map[string]int
	ruleByCat, prevRuleByCat [3]map[string]int

	sla      [3]*slaAcc
	imac     [3]IMACMonth
	imacOn   bool
	reopenEv int
	reopenT  int
	misfiled Misfiled
	changes  []KnownChange
}

type slaAcc struct {
	c                   Compliance
	respTimes, resTimes []time.Duration
}

func newBuilder(in Input) *builder {
	b := &builder{in: in, p: in.Params.withDefaults(), cal: in.Contract.Calendar}
	b.loc = b.cal.Loc
	if b.loc == nil {
		b.loc = time.UTC
	}
	b.qs, b.qe = in.Quarter.Bounds(b.loc)
	b.ps, b.pe = in.Quarter.Prev().Bounds(b.loc)
	b.asOf = in.AsOf
	if b.asOf.IsZero() {
		b.asOf = b.qe
	}
	b.ws = WeekStartDay(b.cal)
	b.qStartN, b.qEndN = dayNum(in.Quarter.FirstDay()), dayNum(in.Quarter.EndDay())
	b.firstWeek = weekOf(b.qStartN, b.ws)
	b.nWeeks = int((b.qEndN - b.firstWeek + 6) / 7)
	b.weeks = make([]counts, b.nWeeks)
	b.histTo = b.firstWeek
	b.histFrom = b.firstWeek - int64(7*13*b.p.HistoryQuarters)
	b.hist = make([][nSeries]int, (b.histTo-b.histFrom)/7)
	b.earliest = math.MaxInt64
	if !in.HistoryStart.IsZero() {
		b.earliest = dayNum(localDate(in.HistoryStart, b.loc))
	}
	b.quarterMonthByKey = map[string]int{}
	for i, m := range in.Quarter.Months() {
		b.monthStartN[i] = dayNum(m)
		b.monthKeys[i] = sla.MonthKey(m)
		b.quarterMonthByKey[b.monthKeys[i]] = i
	}
	b.monthStartN[3] = b.qEndN
	b.curPrio, b.prevPrio = map[domain.Priority]int{}, map[domain.Priority]int{}
	for i := range 3 {
		b.matrix[i] = map[string]int{}
		b.sla[i] = &slaAcc{c: Compliance{Category: domain.Categories[i]}}
		b.reqByCat[i], b.prevReqByCat[i] = map[string]int{}, map[string]int{}
		b.ruleByCat[i], b.prevRuleByCat[i] = map[string]int{}, map[string]int{}
		b.imac[i] = IMACMonth{Month: b.monthKeys[i]}
	}
	b.requesters, b.requesterName, b.rules = map[string]int{}, map[string]string{}, map[string]int{}
	if p := in.Contract.IMAC; p != nil {
		b.imacOn = true
		for i := range b.imac {
			b.imac[i].Quota = p.MonthlyQuota
		}
	}
	if len(in.Contract.Sites) > 0 {
		b.sites = make(map[string]string, len(in.Contract.Sites))
		seen := map[string]bool{}
		for k, v := range in.Contract.Sites {
			b.sites[strings.ToLower(strings.TrimSpace(k))] = v
			if !seen[v] {
				seen[v] = true
				b.siteNames = append(b.siteNames, v)
			}
		}
		slices.Sort(b.siteNames)
		b.siteCounts = map[string]*counts{}
	}
	for _, ch := range in.Contract.Changes {
		b.addChange(KnownChange{Date: ch.Date.String(), What: ch.What}, dayNum(ch.Date))
	}
	return b
}

// addChange keeps a change that can matter to the quarter: in it, or within
// the lookback before it.
func (b *builder) addChange(k KnownChange, n int64) {
	if n < b.qStartN-int64(b.p.ChangeLookback) || n >= b.qEndN {
		return
	}
	k.InQuarter = n >= b.qStartN
	b.changes = append(b.changes, k)
}

func (b *builder) inQuarter(t time.Time) bool {
	return !t.Before(b.qs) && t.Before(b.qe) && !t.After(b.asOf)
}

// site maps a requester address to its site: the address itself, then its
// domain and each parent domain; "Other" when none is configured.
func (b *builder) site(addr string) string {
	a := strings.ToLower(addr)
	if s, ok := b.sites[a]; ok {
		return s
	}
	at := strings.LastIndexByte(a, '@')
	d := a[at+1:]
	for d != "" {
		if s, ok := b.sites[d]; ok {
			return s
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
	}
	return OtherSite
}

// OtherSite is the site of requesters no site entry matches.
const OtherSite = "Other"

// ticketFacts are what one ticket's events say, up to AsOf.
type ticketFacts struct {
	opened          *domain.Event
	firstResponse   time.Time // earliest response event
	firstFinish     time.Time // earliest resolved/closed event
	finalResolution time.Time // last resolved/closed not followed by a reopening
	becameIMAC      bool      // an event set category imac
	pauses          []pause   // resumptions with their paused business time
}

type pause struct {
	at  time.Time
	dur time.Duration
}

func (b *builder) ticket(tw *TicketWithEvents) {
	t := &tw.Ticket
	if t.Opened.After(b.asOf) {
		return
	}
	n := dayNum(localDate(t.Opened, b.loc))
	b.earliest = min(b.earliest, n)
	cat := catIndex(t.Category)

	// Events: known changes, reopenings in the quarter, facts for SLA.
	var f ticketFacts
	finished := false // last status event was resolved/closed
	reopenedHere := false
	for i := range tw.Events {
		ev := &tw.Events[i]
		if ev.At.After(b.asOf) {
			continue
		}
		switch ev.Kind {
		case domain.EventOpened:
			if f.opened == nil {
				f.opened = ev
			}
		case domain.EventResponse:
			if f.firstResponse.IsZero() || ev.At.Before(f.firstResponse) {
				f.firstResponse = ev.At
			}
		case domain.EventResolved, domain.EventClosed:
			if f.firstFinish.IsZero() {
				f.firstFinish = ev.At
			}
			f.finalResolution = ev.At
			finished = true
		case domain.EventReopened:
			if finished && b.inQuarter(ev.At) {
				b.reopenEv++
				reopenedHere = true
			}
			f.finalResolution = time.Time{}
			finished = false
		case domain.EventPending:
			finished = false
		}
		if ev.Data != nil {
			if what := ev.Data["change"]; what != "" {
				d := localDate(ev.At, b.loc)
				b.addChange(KnownChange{Date: d.String(), What: what, Ticket: t.ID}, dayNum(d))
			}
			if ev.Kind != domain.EventOpened && ev.Data["category"] == string(domain.IMAC) {
				f.becameIMAC = true
			}
			if s := ev.Data["paused_business"]; s != "" {
				if d, err := time.ParseDuration(s); err == nil && d > 0 {
					f.pauses = append(f.pauses, pause{ev.At, d})
				}
			}
		}
	}
	if reopenedHere {
		b.reopenT++
	}

	// IMAC use by month of the service day.
	if b.imacOn && t.Category == domain.IMAC && len(t.IMACDate) >= 7 {
		if i, ok := b.quarterMonthByKey[t.IMACDate[:7]]; ok {
			b.imac[i].Scheduled++
			if t.Billable {
				b.imac[i].Billable++
			}
		}
	}

	if n >= b.histFrom && n < b.histTo {
		w := (n - b.histFrom) / 7
		if cat >= 0 {
			b.hist[w][cat]++
		}
		b.hist[w][sAll]++
	}
	rules := openedRules(t, f.opened)
	addr := strings.ToLower(t.Requester.Addr)
	if !t.Opened.Before(b.ps) && t.Opened.Before(b.pe) {
		b.prev.add(cat)
		b.prevPrio[t.Priority]++
		if cat >= 0 {
			b.prevReqByCat[cat][addr]++
			for _, r := range rules {
				b.prevRuleByCat[cat][r]++
			}
		}
		return
	}
	if !b.inQuarter(t.Opened) {
		return
	}

	b.cur.add(cat)
	b.curPrio[t.Priority]++
	m := 0
	for m < 2 && n >= b.monthStartN[m+1] {
		m++
	}
	b.months[m].add(cat)
	b.weeks[(weekOf(n, b.ws)-b.firstWeek)/7].add(cat)
	b.requesters[addr]++
	if b.requesterName[addr] == "" {
		b.requesterName[addr] = t.Requester.Name
	}
	for _, r := range rules {
		b.rules[r]++
	}
	if b.sites != nil {
		s := b.site(addr)
		sc := b.siteCounts[s]
		if sc == nil {
			sc = &counts{}
			b.siteCounts[s] = sc
		}
		sc.add(cat)
	}
	if cat < 0 {
		return
	}
	b.matrix[cat][string(t.Priority)]++
	b.reqByCat[cat][addr]++
	for _, r := range rules {
		b.ruleByCat[cat][r]++
	}
	if cat == sIMAC {
		b.misfiled.IMACs++
		if i := m; b.imacOn {
			b.imac[i].Requested++
			if t.IMACDeferred {
				b.imac[i].Deferred++
			}
		}
	}
	if f.opened != nil && f.opened.Data["category"] == string(domain.Fault) && (cat == sIMAC || f.becameIMAC) {
		b.misfiled.FaultToIMAC++
		if p := domain.Priority(f.opened.Data["priority"]); p == domain.Urgent || p == domain.High {
			b.misfiled.UrgentHigh++
		}
	}
	b.measure(b.sla[cat], t, &f)
}

// openedRules are the rules that matched when the ticket was opened: the
// opened event's "rules", or the ticket's own list without the event.
func openedRules(t *domain.Ticket, opened *domain.Event) []string {
	if opened == nil || opened.Data == nil {
		return t.Rules
	}
	s, ok := opened.Data["rules"]
	if !ok {
		return t.Rules
	}
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// measure adds one ticket to its category's compliance.
func (b *builder) measure(a *slaAcc, t *domain.Ticket, f *ticketFacts) {
	a.c.Tickets++
	if !t.ResponseDue.IsZero() || !t.ResolutionDue.IsZero() {
		a.c.WithTarget++
	}
	// The first response: the ticket's recorded one, else the earliest
	// response event.
	resp := t.FirstResponse
	if resp.IsZero() || resp.After(b.asOf) {
		resp = f.firstResponse
	}
	if !resp.IsZero() {
		a.respTimes = append(a.respTimes, b.businessTime(t.Opened, resp, pausedBefore(t, f.pauses, resp)))
	}
	if due := t.ResponseDue; !due.IsZero() {
		switch {
		case !resp.IsZero():
			a.c.Response.count(!resp.After(due))
		case !f.firstFinish.IsZero() && !f.firstFinish.After(due):
			// Closed before its response deadline without a reply: nothing
			// to measure.
		case !b.asOf.Before(due):
			a.c.Response.Missed++
		default:
			a.c.Response.Pending++
		}
	}
	res := f.finalResolution
	if !res.IsZero() {
		a.resTimes = append(a.resTimes, b.businessTime(t.Opened, res, t.PausedBusiness))
	}
	if due := t.ResolutionDue; !due.IsZero() {
		switch {
		case !res.IsZero():
			a.c.Resolution.count(!res.After(due))
		case !b.asOf.Before(due):
			a.c.Resolution.Missed++
		default:
			a.c.Resolution.Pending++
		}
	}
}

func (m *Measure) count(met bool) {
	if met {
		m.Met++
	} else {
		m.Missed++
	}
}

// businessTime is the business time from opened to at less the paused
// business time, never negative.
func (b *builder) businessTime(opened, at time.Time, paused time.Duration) time.Duration {
	return max(b.cal.BusinessBetween(opened, at)-paused, 0)
}

// pausedBefore is the business time the ticket was paused before at: the
// "paused_business" of the events that resumed it by then, at most the
// ticket's recorded total.
func pausedBefore(t *domain.Ticket, ps []pause, at time.Time) time.Duration {
	var sum time.Duration
	for _, p := range ps {
		if !p.at.After(at) {
			sum += p.dur
		}
	}
	return min(sum, t.PausedBusiness)
}

func (b *builder) finish() *QBR {
	in, p := b.in, b.p
	q := &QBR{
		Contract: ContractInfo{ID: in.Contract.ID, Name: in.Contract.Name, Language: in.Contract.Language,
			Calendar: in.Contract.CalendarName, Timezone: b.loc.String()},
		Quarter:   in.Quarter.String(),
		Start:     in.Quarter.FirstDay().String(),
		End:       in.Quarter.EndDay().String(),
		Previous:  in.Quarter.Prev().String(),
		AsOf:      b.asOf.In(b.loc),
		WeekStart: strings.ToLower(b.ws.String()),
		Params:    p,
	}
	q.Total = newCount("all", b.cur[sAll], b.prev[sAll])
	for i, c := range domain.Categories {
		q.ByCategory = append(q.ByCategory, newCount(string(c), b.cur[i], b.prev[i]))
		q.Matrix = append(q.Matrix, MatrixRow{Category: c, ByPriority: b.matrix[i]})
		ac := b.sla[i]
		ac.c.Response.finish(ac.respTimes)
		ac.c.Resolution.finish(ac.resTimes)
		q.SLA = append(q.SLA, ac.c)
	}
	for _, pr := range domain.Priorities {
		q.ByPriority = append(q.ByPriority, newCount(string(pr), b.curPrio[pr], b.prevPrio[pr]))
	}
	for i := range b.months {
		q.Months = append(q.Months, Bucket{Key: b.monthKeys[i], Total: b.months[i][sAll], ByCategory: b.months[i].byCategory()})
	}
	for i := range b.weeks {
		w := b.firstWeek + int64(7*i)
		days := min(w+7, b.qEndN) - max(w, b.qStartN)
		q.Weeks = append(q.Weeks, Bucket{Key: dateOfNum(w).String(), Total: b.weeks[i][sAll], ByCategory: b.weeks[i].byCategory(), Days: int(days)})
	}
	if b.sites != nil {
		names := b.siteNames
		if !slices.Contains(names, OtherSite) {
			names = append(slices.Clone(names), OtherSite)
		}
		for _, s := range names {
			var c counts
			if sc := b.siteCounts[s]; sc != nil {
				c = *sc
			}
			q.Sites = append(q.Sites, Bucket{Key: s, Total: c[sAll], ByCategory: c.byCategory()})
		}
	}
	if b.imacOn {
		u := &IMACUse{Quota: in.Contract.IMAC.MonthlyQuota, Policy: cmp.Or(in.Contract.IMAC.OverQuota, sla.OverQuotaNextMonth)}
		for _, m := range b.imac {
			m.Exceeded = m.Billable > 0 || m.Deferred > 0 || (m.Quota > 0 && m.Scheduled > m.Quota)
			u.Scheduled += m.Scheduled
			u.Billable += m.Billable
			if m.Exceeded {
				u.ExceededMonths++
			}
			u.Months = append(u.Months, m)
		}
		q.IMAC = u
	}
	q.Requesters = rank(b.requesters, b.requesterName, p.Top)
	q.Rules = rank(b.rules, nil, p.Top)
	q.Reopened = Reopened{Events: b.reopenEv, Tickets: b.reopenT}
	q.Misfiled = b.misfiled
	slices.SortStableFunc(b.changes, func(x, y KnownChange) int {
		return cmp.Or(strings.Compare(x.Date, y.Date), strings.Compare(x.Ticket, y.Ticket), strings.Compare(x.What, y.What))
	})
	q.Changes = slices.CompactFunc(b.changes, func(x, y KnownChange) bool { return x == y })
	if q.Changes == nil {
		q.Changes = []KnownChange{}
	}
	b.bands(q)
	q.Findings = recommend(q, b)
	return q
}

// finish sets the rate and the nearest-rank median and p90 of ds.
func (m *Measure) finish(ds []time.Duration) {
	if n := m.Measured(); n > 0 {
		r := float64(m.Met) / float64(n)
		m.Rate = &r
	}
	m.Timed = len(ds)
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	med, p90 := Duration(nearestRank(ds, 0.5)), Duration(nearestRank(ds, 0.9))
	m.Median, m.P90 = &med, &p90
}

// nearestRank is the p-quantile of sorted ds by the nearest-rank method:
// the smallest value with at least p of the values at or below it.
func nearestRank(ds []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[max(i, 0)]
}

// rank returns the top entries of m by count, then key.
func rank(m map[string]int, names map[string]string, top int) []Ranked {
	out := make([]Ranked, 0, len(m))
	for k, v := range m {
		r := Ranked{Key: k, Count: v}
		if names != nil {
			r.Name = names[k]
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Ranked) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Key, b.Key)) })
	if len(out) > top {
		out = out[:top]
	}
	return out
}

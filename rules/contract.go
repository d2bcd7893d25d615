package rules

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

var (
	contractIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	prefixRE     = regexp.MustCompile(`^[A-Z0-9]{1,16}$`)
)

// NoContractPrefix is the ticket prefix of tickets without a contract (SPEC
// §4); no contract may use it.
const NoContractPrefix = "T"

var (
	contractKeys = keys("id", "name", "prefix", "match", "calendar", "language", "representative",
		"customer_contacts", "sites", "changes", "sla", "imac")
	languages = []string{"he", "en", "auto"}
	overQuota = []string{sla.OverQuotaNextMonth, sla.OverQuotaBillable}
)

func categoryNames() []string {
	out := make([]string, len(domain.Categories))
	for i, c := range domain.Categories {
		out[i] = string(c)
	}
	return out
}

func priorityNames() []string {
	out := make([]string, len(domain.Priorities))
	for i, p := range domain.Priorities {
		out[i] = string(p)
	}
	return out
}

// claims records who first claimed a contract id, prefix, domain or address.
type claim struct {
	contract string
	pos      Pos
	path     string
}

type contractLoader struct {
	l        *loader
	cals     map[string]*sla.Calendar
	calNames []string
	ids      map[string]claim
	prefixes map[string]claim
	domains  map[string]claim
	addrs    map[string]claim
}

// contracts reads `contracts:`, a non-empty list.
func (l *loader) contracts(top *mapNode, cals map[string]*sla.Calendar, calNames []string) []*Contract {
	e := top.get("contracts")
	if e == nil {
		return nil
	}
	cl := &contractLoader{
		l: l, cals: cals, calNames: calNames,
		ids: map[string]claim{}, prefixes: map[string]claim{}, domains: map[string]claim{}, addrs: map[string]claim{},
	}
	items := l.seq("contracts", e.val)
	if v := l.resolve(e.val); isNull(v) || v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		l.errAt(v, "contracts", "expected at least one contract")
	}
	var out []*Contract
	for i, it := range items {
		if c := cl.contract(index("contracts", i), it); c != nil {
			out = append(out, c)
		}
	}
	l.addrClaims = cl.addrs
	return out
}

func (cl *contractLoader) contract(path string, n *yaml.Node) *Contract {
	l := cl.l
	m := l.mapping(path, n, n, contractKeys)
	if !m.present {
		return nil // mapping reported it
	}
	c := &Contract{Pos: l.pos(m.n), Sites: map[string]string{}}
	validID := false
	if m.require("id") {
		e := m.get("id")
		c.ID = m.str("id", "")
		validID = contractIDRE.MatchString(c.ID)
		if !validID {
			l.errAt(e.val, e.path, "invalid id %q: expected lower-case letters, digits, '-' and '_' (at most 64)", c.ID)
		} else if first, dup := cl.ids[c.ID]; dup {
			l.errAt(e.val, e.path, "duplicate contract id %q (first at %s)", c.ID, first.pos)
		} else {
			cl.ids[c.ID] = claim{c.ID, l.pos(e.val), e.path}
		}
	}
	c.Name = m.nonEmpty("name", c.ID)
	cl.prefix(m, c, validID)
	cl.match(m, c)
	cl.calendar(m, c)
	c.Language = m.choice("language", "en", languages...)
	c.Representative = m.address("representative")
	if e := m.get("customer_contacts"); e != nil {
		nodes, list := l.strList(e.path, e.val)
		for i, a := range list {
			if !validAddress(strings.TrimSpace(a)) {
				l.errAt(nodes[i], index(e.path, i), "invalid email address %q: expected local@domain", a)
				continue
			}
			c.CustomerContacts = append(c.CustomerContacts, strings.TrimSpace(a))
		}
	}
	if e := m.get("sites"); e != nil {
		sm := l.mapping(e.path, e.val, e.key, keySet{noun: "site"})
		for _, s := range sm.entries {
			k := strings.ToLower(strings.TrimSpace(s.name))
			if !validAddress(k) && !validDomain(k) {
				l.errAt(s.key, e.path, "invalid site key %q: expected an address or a (sub)domain", s.name)
				continue
			}
			if _, dup := c.Sites[k]; dup {
				l.errAt(s.key, e.path, "site key %q is given twice (keys are compared without case)", s.name)
				continue
			}
			v, ok := l.scalar(s.path, s.val)
			if ok && strings.TrimSpace(v) == "" {
				l.errAt(s.val, s.path, "must not be empty: expected the site's name")
				continue
			}
			c.Sites[k] = v
		}
	}
	if e := m.get("changes"); e != nil {
		for i, it := range l.seq(e.path, e.val) {
			cm := l.mapping(index(e.path, i), it, it, keys("date", "what"))
			if !cm.present {
				continue // mapping reported it
			}
			okD, okW := cm.require("date"), cm.require("what")
			var ch Change
			if okD {
				d := cm.get("date")
				ch.Date, okD = l.date(d.path, d.val)
			}
			if okW {
				ch.What = cm.nonEmpty("what", "")
			}
			if okD && okW && ch.What != "" {
				c.Changes = append(c.Changes, ch)
			}
		}
	}
	c.SLA = cl.sla(m)
	c.IMAC = cl.imac(m, c)
	return c
}

func (cl *contractLoader) prefix(m *mapNode, c *Contract, validID bool) {
	l := cl.l
	at, path, what := m.n, m.path, "the default prefix %q (the upper-cased id)"
	if e := m.get("prefix"); e != nil {
		c.Prefix = m.str("prefix", "")
		at, path, what = e.val, e.path, "prefix %q"
		if !prefixRE.MatchString(c.Prefix) {
			l.errAt(at, path, "invalid prefix %q: expected 1 to 16 upper-case letters and digits", c.Prefix)
			return
		}
	} else if validID {
		c.Prefix = strings.ToUpper(c.ID)
		if !prefixRE.MatchString(c.Prefix) {
			l.errAt(at, path, what+" is not 1 to 16 letters and digits: set prefix", c.Prefix)
			return
		}
	}
	if c.Prefix == "" {
		return
	}
	if c.Prefix == NoContractPrefix {
		l.errAt(at, path, what+" is reserved for tickets without a contract", c.Prefix)
		return
	}
	if first, dup := cl.prefixes[c.Prefix]; dup {
		l.errAt(at, path, what+" is already used by contract %q at %s", c.Prefix, first.contract, first.pos)
		return
	}
	cl.prefixes[c.Prefix] = claim{c.ID, l.pos(at), path}
}

func (cl *contractLoader) match(m *mapNode, c *Contract) {
	l := cl.l
	if !m.require("match") {
		return
	}
	e := m.get("match")
	nerr := len(l.errs)
	mm := l.mapping(e.path, e.val, e.key, keys("domains", "addresses"))
	if d := mm.get("domains"); d != nil {
		nodes, list := l.strList(d.path, d.val)
		for i, s := range list {
			path := index(d.path, i)
			s = strings.ToLower(strings.TrimSpace(s))
			if strings.Contains(s, "@") || !validDomain(s) {
				l.errAt(nodes[i], path, "invalid domain %q: expected a domain name such as example.com (subdomains match too)", list[i])
				continue
			}
			if cl.claim(cl.domains, nodes[i], path, "domain", s, c.ID) {
				c.Domains = append(c.Domains, s)
			}
		}
	}
	if a := mm.get("addresses"); a != nil {
		nodes, list := l.strList(a.path, a.val)
		for i, s := range list {
			path := index(a.path, i)
			s = strings.ToLower(strings.TrimSpace(s))
			if !validAddress(s) {
				l.errAt(nodes[i], path, "invalid email address %q: expected local@domain", list[i])
				continue
			}
			if cl.claim(cl.addrs, nodes[i], path, "address", s, c.ID) {
				c.Addresses = append(c.Addresses, s)
			}
		}
	}
	if len(c.Domains) == 0 && len(c.Addresses) == 0 && len(l.errs) == nerr {
		l.errAt(mm.n, e.path, "expected at least one of domains and addresses: a contract must match some senders")
	}
}

// claim records that contract id claims key (a domain or an address) and
// reports it if another contract (or the same one) claimed it first.
func (cl *contractLoader) claim(set map[string]claim, n *yaml.Node, path, what, key, id string) bool {
	if first, dup := set[key]; dup {
		cl.l.errAt(n, path, "%s %q is already claimed by contract %q at %s", what, key, first.contract, first.pos)
		return false
	}
	set[key] = claim{id, cl.l.pos(n), path}
	return true
}

func (cl *contractLoader) calendar(m *mapNode, c *Contract) {
	l := cl.l
	e := m.get("calendar")
	if e == nil {
		if len(cl.calNames) == 1 {
			c.CalendarName = cl.calNames[0]
			c.Calendar = cl.cals[c.CalendarName]
			return
		}
		if len(cl.calNames) == 0 {
			l.errAt(m.n, m.path, "missing required key %q (and no calendars are defined)", "calendar")
		} else {
			l.errAt(m.n, m.path, "missing required key %q: expected one of %s", "calendar", oneOf(cl.calNames))
		}
		return
	}
	name, ok := l.scalar(e.path, e.val)
	if !ok {
		return
	}
	c.CalendarName = name
	if !contains(cl.calNames, name) {
		msg := "unknown calendar %q%s"
		if len(cl.calNames) == 0 {
			l.errAt(e.val, e.path, msg+": no calendars are defined", name, "")
		} else {
			l.errAt(e.val, e.path, msg+": expected %s", name, suggest(name, cl.calNames), oneOf(cl.calNames))
		}
		return
	}
	c.Calendar = cl.cals[name] // nil when the calendar itself has errors
}

// slaKeys are the keys of `sla:`: warn_at and one per category.
var slaKeys = keySet{noun: "category", names: append([]string{"warn_at"}, categoryNames()...),
	expect: oneOf(categoryNames()) + " (or warn_at)"}

func (cl *contractLoader) sla(cm *mapNode) SLA {
	l := cl.l
	s := SLA{WarnAt: DefaultWarnAt, Targets: map[domain.Category]map[domain.Priority]sla.Target{}}
	e := cm.get("sla")
	if e == nil {
		return s
	}
	m := l.mapping(e.path, e.val, e.key, slaKeys)
	if w := m.get("warn_at"); w != nil {
		s.WarnAt = cl.warnAt(w)
	}
	for _, c := range domain.Categories {
		ce := m.get(string(c))
		if ce == nil {
			continue
		}
		pm := l.mapping(ce.path, ce.val, ce.key, keySet{noun: "priority", names: priorityNames(), list: true})
		byPrio := map[domain.Priority]sla.Target{}
		for _, p := range domain.Priorities {
			pe := pm.get(string(p))
			if pe == nil {
				continue
			}
			if t, ok := cl.target(pe); ok {
				byPrio[p] = t
			}
		}
		s.Targets[c] = byPrio
	}
	return s
}

// warnAt parses "80%" or 0.8: a share strictly between 0 and 1.
func (cl *contractLoader) warnAt(e *entry) float64 {
	s, ok := cl.l.scalar(e.path, e.val)
	if !ok {
		return DefaultWarnAt
	}
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
	if err != nil {
		cl.l.errAt(e.val, e.path, "invalid share %q: expected a percentage such as 80%% or a fraction such as 0.8", s)
		return DefaultWarnAt
	}
	if pct {
		v /= 100
	}
	if !(v > 0 && v < 1) {
		cl.l.errAt(e.val, e.path, "%s is outside (0%%, 100%%): expected a share of the target such as 80%% or 0.8", t)
		return DefaultWarnAt
	}
	return v
}

func (cl *contractLoader) target(e *entry) (sla.Target, bool) {
	l := cl.l
	m := l.mapping(e.path, e.val, e.key, keys("response", "resolution"))
	var t sla.Target
	ok := true
	if r := m.get("response"); r != nil {
		if sp, good := l.span(r.path, r.val); good {
			t.Response = &sp
		} else {
			ok = false
		}
	}
	if r := m.get("resolution"); r != nil {
		if sp, good := l.span(r.path, r.val); good {
			t.Resolution = &sp
		} else {
			ok = false
		}
	}
	if ok && t.Response == nil && t.Resolution == nil {
		l.errAt(m.n, e.path, "expected response, resolution or both")
		return t, false
	}
	if ok && t.Response != nil && t.Resolution != nil && shorter(*t.Resolution, *t.Response) {
		r := m.get("resolution")
		l.errAt(r.val, r.path, "%s is shorter than the response target %s", t.Resolution, t.Response)
		return t, false
	}
	return t, ok
}

// shorter reports whether a is certainly shorter than b. Business days and
// business hours are not comparable without a calendar, so only spans of
// the same unit are compared.
func shorter(a, b sla.Span) bool {
	switch {
	case a.Days == 0 && b.Days == 0:
		return a.Dur < b.Dur
	case a.Dur == 0 && b.Dur == 0:
		return a.Days < b.Days
	}
	return false
}

func (cl *contractLoader) imac(cm *mapNode, c *Contract) *sla.IMACPlan {
	l := cl.l
	e := cm.get("imac")
	if e == nil {
		return nil
	}
	m := l.mapping(e.path, e.val, e.key, keys("service_days", "notice", "monthly_quota", "per_visit", "over_quota"))
	p := &sla.IMACPlan{
		MonthlyQuota: m.integer("monthly_quota", 0, 0, 100000),
		PerVisit:     m.integer("per_visit", 0, 0, 100000),
		OverQuota:    m.choice("over_quota", sla.OverQuotaNextMonth, overQuota...),
	}
	if n := m.get("notice"); n != nil {
		p.Notice, _ = l.span(n.path, n.val)
	}
	if !m.require("service_days") {
		return p
	}
	sd := m.get("service_days")
	nerr := len(l.errs)
	nodes, list := l.strList(sd.path, sd.val)
	if len(list) == 0 && len(l.errs) == nerr {
		l.errAt(l.resolve(sd.val), sd.path, "expected at least one service day")
	}
	seen := map[time.Weekday]*yaml.Node{}
	for i := range list {
		path := index(sd.path, i)
		d, ok := l.weekday(path, nodes[i])
		if !ok {
			continue
		}
		if first, dup := seen[d]; dup {
			l.errAt(nodes[i], path, "%s is listed twice (first at %s)", d, l.pos(first))
			continue
		}
		seen[d] = nodes[i]
		if c.Calendar != nil && len(c.Calendar.Week[d]) == 0 {
			l.errAt(nodes[i], path, "%s is closed in calendar %q: a service day must be a business day", d, c.CalendarName)
			continue
		}
		p.ServiceDays = append(p.ServiceDays, d)
	}
	return p
}

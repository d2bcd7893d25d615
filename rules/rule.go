package rules

import (
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/textfold"
)

// Rule condition vocabulary (SPEC §3).
var (
	// fields a condition can test.
	fields = []string{"from", "to", "cc", "subject", "body", "text", "header", "contract", "attachment"}
	// operators a field test can use.
	operators = []string{"equals", "contains", "contains_any", "matches", "in"}

	combinators = []string{"all", "any", "not"}
	ruleKeys    = keys("name", "when", "set", "continue")
	setKeys     = keys("category", "priority", "tags", "ack", "drop")
	condKeys    = keySet{noun: "field or combinator", names: append(append([]string{}, fields...), combinators...), list: true}
	opKeys      = keySet{noun: "operator", names: operators, list: true}
	headerKeys  = keySet{noun: "operator", names: append([]string{"name"}, operators...), list: true}
	headerRE    = regexp.MustCompile(`^[!-9;-~]{1,100}$`) // RFC 5322 field name: printable ASCII but ':'
)

// maxCondDepth bounds the nesting of all/any/not.
const maxCondDepth = 32

// rules reads `rules:`, a non-empty list evaluated in order.
func (l *loader) rules(top *mapNode, cfg *Config) []*Rule {
	e := top.get("rules")
	if e == nil {
		return nil
	}
	items := l.seq("rules", e.val)
	if v := l.resolve(e.val); isNull(v) || v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		l.errAt(v, "rules", "expected at least one rule")
	}
	ids := map[string]bool{}
	for _, c := range cfg.Contracts {
		ids[c.ID] = true
	}
	names := map[string]Pos{}
	var out []*Rule
	var stopper *Rule // the first rule that matches everything and stops
	for i, it := range items {
		path := index("rules", i)
		m := l.mapping(path, it, it, ruleKeys)
		if !m.present {
			continue // mapping reported it
		}
		r := &Rule{Pos: l.pos(m.n)}
		if m.require("name") {
			ne := m.get("name")
			r.Name = strings.TrimSpace(m.nonEmpty("name", ""))
			if r.Name != "" {
				if first, dup := names[r.Name]; dup {
					l.errAt(ne.val, ne.path, "duplicate rule name %q (first at %s)", r.Name, first)
				} else {
					names[r.Name] = l.pos(ne.val)
				}
			}
		}
		whenOK := true
		if w := m.get("when"); w != nil {
			nerr := len(l.errs)
			r.When = l.cond(w.path, w.val, ids, 0)
			whenOK = len(l.errs) == nerr && r.When != nil
		}
		r.Continue = m.boolean("continue", false)
		if s := m.get("set"); s != nil {
			r.Set = l.actions(s, r.Continue)
		}
		if stopper != nil {
			l.errAt(m.n, path, "rule %q is unreachable: rule %q at %s matches every message and stops",
				r.Name, stopper.Name, stopper.Pos)
		}
		if r.Continue && r.Set.empty() {
			at := m.get("continue")
			l.errAt(at.val, at.path, "rule sets nothing and passes on to the next rule: it has no effect; add set, or remove continue")
		}
		if r.When == nil && whenOK && !r.Continue && stopper == nil {
			stopper = r
		}
		out = append(out, r)
	}
	return out
}

func (a Actions) empty() bool {
	return a.Category == "" && a.Priority == "" && len(a.Tags) == 0 && a.Ack == nil && !a.Drop
}

// actions reads a rule's `set:`.
func (l *loader) actions(e *entry, cont bool) Actions {
	m := l.mapping(e.path, e.val, e.key, setKeys)
	var a Actions
	if c := m.get("category"); c != nil {
		if s, ok := l.scalar(c.path, c.val); ok {
			if cat := domain.Category(s); cat.Valid() {
				a.Category = cat
			} else {
				l.errAt(c.val, c.path, "unknown category %q%s: expected %s", s, suggest(s, categoryNames()), oneOf(categoryNames()))
			}
		}
	}
	if p := m.get("priority"); p != nil {
		if s, ok := l.scalar(p.path, p.val); ok {
			if prio := domain.Priority(s); prio.Valid() {
				a.Priority = prio
			} else {
				l.errAt(p.val, p.path, "unknown priority %q%s: expected %s", s, suggest(s, priorityNames()), oneOf(priorityNames()))
			}
		}
	}
	if t := m.get("tags"); t != nil {
		nodes, tags := l.strList(t.path, t.val)
		seen := map[string]bool{}
		for i, tag := range tags {
			tag = strings.TrimSpace(tag)
			switch {
			case tag == "" || strings.ContainsAny(tag, " \t\r\n,"):
				l.errAt(nodes[i], index(t.path, i), "invalid tag %q: expected a word without spaces or commas", tags[i])
			case seen[tag]:
				l.errAt(nodes[i], index(t.path, i), "duplicate tag %q", tag)
			default:
				seen[tag] = true
				a.Tags = append(a.Tags, tag)
			}
		}
	}
	if m.has("ack") {
		v := m.boolean("ack", true)
		a.Ack = &v
	}
	a.Drop = m.boolean("drop", false)
	if a.Drop {
		var other []string
		for _, k := range []string{"category", "priority", "tags", "ack"} {
			if m.has(k) {
				other = append(other, k)
			}
		}
		d := m.get("drop")
		if len(other) > 0 {
			l.errAt(d.val, d.path, "a dropped message gets no ticket, so %s would have no effect: remove them", oneOf(other))
		}
		if cont {
			l.errAt(d.val, d.path, "a dropped message is not evaluated further: remove continue: true")
		}
	}
	return a
}

// cond reads a condition mapping: fields and combinators, several of them
// an implicit all.
func (l *loader) cond(path string, n *yaml.Node, contracts map[string]bool, depth int) *Cond {
	n = l.resolve(n)
	if depth > maxCondDepth {
		if !l.tooDeep {
			l.tooDeep = true // once is enough: the rest is the same problem
			l.errAt(n, path, "conditions nested too deeply (more than %d levels)", maxCondDepth)
		}
		return nil
	}
	if l.active[n] {
		l.errAt(n, path, "condition contains itself through an alias")
		return nil
	}
	l.active[n] = true
	defer delete(l.active, n)
	if n == nil || n.Kind != yaml.MappingNode {
		what := "nothing"
		if n != nil {
			what = describe(n)
		}
		l.errAt(n, path, "expected a mapping of conditions (fields such as subject, or all, any, not), got %s", what)
		return nil
	}
	m := l.mapping(path, n, n, condKeys)
	if len(m.entries) == 0 {
		if len(n.Content) == 0 {
			l.errAt(n, path, "expected at least one condition")
		}
		return nil
	}
	var conds []*Cond
	for i := range m.entries {
		e := &m.entries[i]
		var c *Cond
		switch e.name {
		case "all", "any":
			c = l.combinator(e, contracts, depth)
		case "not":
			v := l.resolve(e.val)
			if v.Kind == yaml.SequenceNode {
				l.errAt(v, e.path, "expected a mapping (one condition), got a list: write not: {any: [...]} to negate several")
				continue
			}
			if inner := l.cond(e.path, v, contracts, depth+1); inner != nil {
				c = &Cond{Not: inner, Pos: l.pos(e.key)}
			}
		default:
			c = l.leaf(e, contracts)
		}
		if c != nil {
			conds = append(conds, c)
		}
	}
	switch len(conds) {
	case 0:
		return nil
	case 1:
		return conds[0]
	}
	return &Cond{All: conds, Pos: l.pos(n)}
}

func (l *loader) combinator(e *entry, contracts map[string]bool, depth int) *Cond {
	v := l.resolve(e.val)
	if v.Kind != yaml.SequenceNode {
		l.errAt(v, e.path, "expected a list of conditions, got %s", describe(v))
		return nil
	}
	items := l.seq(e.path, v)
	if len(items) == 0 {
		l.errAt(v, e.path, "expected at least one condition")
		return nil
	}
	var conds []*Cond
	ok := true
	for i, it := range items {
		c := l.cond(index(e.path, i), it, contracts, depth+1)
		if c == nil {
			ok = false
			continue
		}
		conds = append(conds, c)
	}
	if !ok {
		return nil
	}
	c := &Cond{Pos: l.pos(e.key)}
	if e.name == "all" {
		c.All = conds
	} else {
		c.Any = conds
	}
	return c
}

// leaf reads one field test: {operator: value, ...}, plus name for header.
func (l *loader) leaf(e *entry, contracts map[string]bool) *Cond {
	ks := opKeys
	if e.name == "header" {
		ks = headerKeys
	}
	v := l.resolve(e.val)
	if v.Kind != yaml.MappingNode {
		l.errAt(v, e.path, "expected a mapping of operators such as {contains: ...}, got %s", describe(v))
		return nil
	}
	nerr := len(l.errs)
	m := l.mapping(e.path, v, e.key, ks)
	c := &Cond{Field: e.name, Pos: l.pos(e.key)}
	if e.name == "header" {
		if m.require("name") {
			ne := m.get("name")
			c.Header = strings.TrimSpace(m.str("name", ""))
			if !headerRE.MatchString(c.Header) {
				l.errAt(ne.val, ne.path, "invalid header name %q: expected a field name such as List-Id", c.Header)
			}
		}
	}
	for i := range m.entries {
		oe := &m.entries[i]
		if oe.name == "name" {
			continue
		}
		if op, ok := l.op(oe, e.name, contracts); ok {
			c.Ops = append(c.Ops, op)
		}
	}
	if len(c.Ops) == 0 && len(l.errs) == nerr {
		l.errAt(m.n, e.path, "expected at least one operator: %s", oneOf(operators))
	}
	if len(l.errs) > nerr {
		return nil
	}
	return c
}

// op reads one operator. Values are folded except for matches.
func (l *loader) op(e *entry, field string, contracts map[string]bool) (Op, bool) {
	op := Op{Kind: e.name, Pos: l.pos(e.key)}
	var raw []string
	var nodes []*yaml.Node
	switch e.name {
	case "equals", "contains", "matches":
		s, ok := l.scalar(e.path, e.val)
		if !ok {
			return op, false
		}
		raw, nodes = []string{s}, []*yaml.Node{l.resolve(e.val)}
	case "contains_any", "in":
		v := l.resolve(e.val)
		if v.Kind != yaml.SequenceNode && !isNull(v) {
			l.errAt(v, e.path, "expected a list of strings, got %s", describe(v))
			return op, false
		}
		nerr := len(l.errs)
		nodes, raw = l.strList(e.path, v)
		if len(l.errs) > nerr {
			return op, false
		}
		if len(raw) == 0 {
			l.errAt(v, e.path, "expected at least one value")
			return op, false
		}
	}
	if e.name == "matches" {
		re, err := regexp.Compile(raw[0])
		if err != nil {
			l.errAt(nodes[0], e.path, "invalid regexp: %v", err)
			return op, false
		}
		op.Values, op.Regexp = raw, re
		return op, true
	}
	ok := true
	for i, s := range raw {
		path := e.path
		if e.name == "contains_any" || e.name == "in" {
			path = index(e.path, i)
		}
		f := textfold.Fold(s)
		if f == "" {
			l.errAt(nodes[i], path, "empty value: it would match every message")
			ok = false
			continue
		}
		if field == "contract" && (e.name == "equals" || e.name == "in") && !contracts[f] && !contracts[s] {
			ids := make([]string, 0, len(contracts))
			for id := range contracts {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			l.errAt(nodes[i], path, "unknown contract %q%s", s, suggest(s, ids))
			ok = false
			continue
		}
		op.Values = append(op.Values, f)
	}
	return op, ok
}

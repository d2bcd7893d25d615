package classify

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/textfold"
)

// node is a compiled condition.
type node struct {
	all, any []*node
	not      *node
	field    string
	header   string
	ops      []rules.Op
	desc     string // the field as written, for traces
	// Failure explanations do not depend on the message, so they are built
	// once here; only a match formats a message-specific explanation.
	opFail  []string
	anyFail string
	// opKW holds, for contains and contains_any, the ids of the op's values
	// in the field's keyword matcher.
	opKW [][]int32
	key  string // field key of the keyword matcher
}

// keywords collects the contains/contains_any values of every rule, per
// field, for one Aho–Corasick matcher per field.
type keywords struct {
	byField map[string]*fieldKeywords
}

type fieldKeywords struct {
	list []string
	ids  map[string]int32
	m    *acMatcher
}

func (k *keywords) add(key, v string) int32 {
	fk := k.byField[key]
	if fk == nil {
		fk = &fieldKeywords{ids: map[string]int32{}}
		k.byField[key] = fk
	}
	if id, ok := fk.ids[v]; ok {
		return id
	}
	id := int32(len(fk.list))
	fk.list = append(fk.list, v)
	fk.ids[v] = id
	return id
}

func (k *keywords) build() {
	for _, fk := range k.byField {
		fk.m = buildMatcher(fk.list)
	}
}

func fieldKey(field, header string) string {
	if field == "header" {
		return "header:" + strings.ToLower(header)
	}
	return field
}

func compile(c *rules.Cond, kw *keywords) *node {
	if c == nil {
		return nil
	}
	n := &node{field: c.Field, header: c.Header, ops: c.Ops, key: fieldKey(c.Field, c.Header)}
	for _, s := range c.All {
		n.all = append(n.all, compile(s, kw))
	}
	for _, s := range c.Any {
		n.any = append(n.any, compile(s, kw))
	}
	if c.Not != nil {
		n.not = compile(c.Not, kw)
	}
	for _, op := range n.ops {
		var ids []int32
		switch op.Kind {
		case "contains", "contains_any":
			for _, v := range op.Values {
				ids = append(ids, kw.add(n.key, v))
			}
		case "matches":
			if lit := requiredLiteral(op.Regexp.String()); lit != "" {
				ids = append(ids, kw.add(n.key, lit))
			}
		}
		n.opKW = append(n.opKW, ids)
	}
	n.desc = c.Field
	if c.Field == "header" {
		n.desc = "header " + c.Header
	}
	for _, op := range n.ops {
		n.opFail = append(n.opFail, failWhy(n.desc, op))
	}
	if n.any != nil {
		var whys []string
		for _, s := range n.any {
			whys = append(whys, s.staticFail())
		}
		n.anyFail = "none of: " + strings.Join(whys, "; ")
	}
	return n
}

// staticFail is the explanation of a failed node when it does not depend on
// the message (leaves and any); for all and not it is a summary.
func (n *node) staticFail() string {
	switch {
	case n.any != nil:
		return n.anyFail
	case n.all != nil:
		return "not all of " + fmt.Sprint(len(n.all)) + " conditions"
	case n.not != nil:
		return "not (...) failed"
	case len(n.opFail) > 0:
		return n.opFail[0]
	}
	return "no match"
}

func failWhy(desc string, op rules.Op) string {
	switch op.Kind {
	case "matches":
		// %#q shows the regexp as written (backquoted, \b not \\b) whenever
		// it can, so an admin can paste it back into the YAML.
		return fmt.Sprintf("%s does not match %#q", desc, op.Regexp.String())
	case "equals":
		return fmt.Sprintf("%s does not equal %q", desc, op.Values[0])
	case "in":
		return fmt.Sprintf("%s not in list", desc)
	case "contains":
		return fmt.Sprintf("%s does not contain %q", desc, op.Values[0])
	default:
		return fmt.Sprintf("%s contains none of %d keywords", desc, len(op.Values))
	}
}

// eval reports whether the condition holds and, in words, why (or why not).
func (n *node) eval(f *fields) (bool, string) {
	if n == nil {
		return true, "no conditions"
	}
	switch {
	case n.all != nil:
		var whys []string
		for _, s := range n.all {
			ok, why := s.eval(f)
			if !ok {
				return false, why
			}
			whys = append(whys, why)
		}
		return true, strings.Join(whys, " and ")
	case n.any != nil:
		for _, s := range n.any {
			if ok, why := s.eval(f); ok {
				return true, why
			}
		}
		return false, n.anyFail
	case n.not != nil:
		ok, why := n.not.eval(f)
		if ok {
			return false, "not: " + why
		}
		return true, "not: " + why
	}
	var parts []string
	for i, op := range n.ops {
		ok, why := n.evalOp(f, op, i)
		if !ok {
			return false, why
		}
		parts = append(parts, why)
	}
	return true, strings.Join(parts, " and ")
}

func (n *node) evalOp(f *fields, op rules.Op, i int) (bool, string) {
	if op.Kind == "matches" {
		if ids := n.opKW[i]; len(ids) == 1 && !f.hits(n.key, n.field, n.header)[ids[0]] {
			return false, n.opFail[i] // its required literal is absent
		}
		for _, v := range f.raw(n.field, n.header) {
			if loc := op.Regexp.FindStringIndex(v); loc != nil {
				return true, fmt.Sprintf("%s matches %#q (%q)", n.desc, op.Regexp.String(), excerpt(v[loc[0]:loc[1]]))
			}
		}
		return false, n.opFail[i]
	}
	var vals []string
	if op.Kind == "equals" || op.Kind == "in" {
		vals = f.folded(n.field, n.header)
	}
	for _, v := range vals {
		switch op.Kind {
		case "equals":
			if v == op.Values[0] {
				return true, fmt.Sprintf("%s equals %q", n.desc, op.Values[0])
			}
		case "in":
			for _, want := range op.Values {
				if v == want {
					return true, fmt.Sprintf("%s in list (%q)", n.desc, want)
				}
			}
		}
	}
	if op.Kind == "contains" || op.Kind == "contains_any" {
		hits := f.hits(n.key, n.field, n.header)
		for j, id := range n.opKW[i] {
			if hits[id] {
				return true, fmt.Sprintf("%s %s %q", n.desc, op.Kind, op.Values[j])
			}
		}
	}
	return false, n.opFail[i]
}

func excerpt(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// fields gives rule conditions the message's values, raw and folded,
// computing each at most once per message.
type fields struct {
	m        *domain.Message
	contract string
	kw       *keywords
	rawCache map[string][]string
	fold     map[string][]string
	hitCache map[string][]bool
}

func newFields(m *domain.Message, contract string, kw *keywords) *fields {
	return &fields{m: m, contract: contract, kw: kw}
}

// hits returns which of the field's keywords occur in its folded values,
// scanning the field once.
func (f *fields) hits(key, field, header string) []bool {
	if h, ok := f.hitCache[key]; ok {
		return h
	}
	fk := f.kw.byField[key]
	h := make([]bool, len(fk.list))
	for _, v := range f.folded(field, header) {
		fk.m.scan(v, h)
	}
	if f.hitCache == nil {
		f.hitCache = map[string][]bool{}
	}
	f.hitCache[key] = h
	return h
}

func addrValues(as ...domain.Address) []string {
	out := make([]string, 0, 2*len(as))
	for _, a := range as {
		if a.Addr != "" {
			out = append(out, a.Addr)
		}
		if a.Name != "" {
			out = append(out, a.Name)
		}
	}
	return out
}

func (f *fields) raw(field, header string) []string {
	key := field
	if field == "header" {
		key = "header:" + strings.ToLower(header)
	}
	if v, ok := f.rawCache[key]; ok {
		return v
	}
	var v []string
	m := f.m
	switch field {
	case "from":
		v = addrValues(m.From)
	case "to":
		v = addrValues(m.To...)
	case "cc":
		v = addrValues(m.Cc...)
	case "subject":
		v = []string{m.Subject}
	case "body":
		v = []string{m.Text}
	case "text":
		v = []string{m.Subject + "\n" + m.Text}
	case "header":
		v = m.HeaderValues(header)
	case "contract":
		if f.contract != "" {
			v = []string{f.contract}
		}
	case "attachment":
		for _, a := range m.Attachments {
			v = append(v, a.Name)
		}
	}
	if f.rawCache == nil {
		f.rawCache = map[string][]string{}
	}
	f.rawCache[key] = v
	return v
}

func (f *fields) folded(field, header string) []string {
	key := field
	if field == "header" {
		key = "header:" + strings.ToLower(header)
	}
	if v, ok := f.fold[key]; ok {
		return v
	}
	var out []string
	switch field {
	case "text":
		// Fold subject and body separately (each is cached) and join.
		s, b := f.folded("subject", ""), f.folded("body", "")
		out = []string{s[0] + " " + b[0]}
	default:
		raw := f.raw(field, header)
		out = make([]string, len(raw))
		for i, v := range raw {
			out[i] = textfold.Fold(v)
		}
	}
	if f.fold == nil {
		f.fold = map[string][]string{}
	}
	f.fold[key] = out
	return out
}

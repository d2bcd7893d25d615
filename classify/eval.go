package classify

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/textfold"
)

// node is a compiled condition.
type node struct {
	all, any []*node
	not      *node
	ops      []opTest
	// Failure explanations do not depend on the message, so they are built
	// once here, and so are those of successful equals, in, contains and
	// contains_any tests (opTest.match); only a regexp match formats a
	// message-specific explanation.
	anyFail string
}

// opTest is one compiled operator test on a field.
type opTest struct {
	kind   opKind
	slot   int32    // the field's index in the classifier's fieldSet
	values []string // the op's values (folded, except for matches)
	re     *regexp.Regexp
	// kw holds, for contains and contains_any, the ids of the op's values
	// in the field's keyword matcher, and for matches the id of the
	// regexp's required literal, if any.
	kw   []int32
	fail string
	// match[j] explains a match of values[j] (equals, in, contains,
	// contains_any).
	match []string
	desc  string // the field as written, for traces
}

type opKind uint8

const (
	opOther opKind = iota
	opEquals
	opIn
	opContains
	opContainsAny
	opMatches
)

func kindOf(s string) opKind {
	switch s {
	case "equals":
		return opEquals
	case "in":
		return opIn
	case "contains":
		return opContains
	case "contains_any":
		return opContainsAny
	case "matches":
		return opMatches
	}
	return opOther
}

// fieldSet numbers the fields (header fields by lower-case name) that the
// rules test, and collects per field the contains/contains_any values and
// required regexp literals of every rule, for one Aho–Corasick matcher per
// field.
type fieldSet struct {
	byKey         map[string]int
	slots         []fieldSlot
	subject, body int // the slots "text" is made of
	text          int
	// group finds the keywords of subject, body and text in one scan of the
	// folded text (nil when neither body nor text has keywords).
	group *textGroup
}

// textGroup is one matcher for the keywords of the subject, body and text
// fields. The folded text is the folded subject, a space and the folded body,
// so one scan of it finds the keywords of all three: a subject keyword must
// end within the subject, a body keyword start within the body.
type textGroup struct {
	m       *acMatcher
	kwLen   []int          // by group keyword id
	targets [][]groupField // by group keyword id: the fields' keyword ids
	slots   []int          // subject, body and text slots with keywords
}

type groupField struct {
	slot int
	id   int32
}

type fieldSlot struct {
	field, header string
	list          []string // keywords
	ids           map[string]int32
	m             *acMatcher
}

func newFieldSet() *fieldSet {
	fs := &fieldSet{byKey: map[string]int{}}
	fs.subject = fs.slot("subject", "")
	fs.body = fs.slot("body", "")
	fs.text = fs.slot("text", "")
	return fs
}

// slot returns the index of a field, adding it if needed.
func (fs *fieldSet) slot(field, header string) int {
	key := fieldKey(field, header)
	if i, ok := fs.byKey[key]; ok {
		return i
	}
	i := len(fs.slots)
	fs.slots = append(fs.slots, fieldSlot{field: field, header: header})
	fs.byKey[key] = i
	return i
}

// add registers keyword v of a field and returns its id.
func (fs *fieldSet) add(slot int, v string) int32 {
	fk := &fs.slots[slot]
	if fk.ids == nil {
		fk.ids = map[string]int32{}
	}
	if id, ok := fk.ids[v]; ok {
		return id
	}
	id := int32(len(fk.list))
	fk.list = append(fk.list, v)
	fk.ids[v] = id
	return id
}

func (fs *fieldSet) build() {
	fs.buildGroup()
	for i := range fs.slots {
		fk := &fs.slots[i]
		// The body and the text are scanned by the group only.
		if len(fk.list) > 0 && (fs.group == nil || i != fs.body && i != fs.text) {
			fk.m = buildMatcher(fk.list)
		}
		fk.ids = nil // only add needs it
	}
}

func (fs *fieldSet) buildGroup() {
	if len(fs.slots[fs.body].list) == 0 && len(fs.slots[fs.text].list) == 0 {
		return
	}
	g := &textGroup{}
	var list []string
	ids := map[string]int32{}
	for _, slot := range []int{fs.subject, fs.body, fs.text} {
		fk := &fs.slots[slot]
		if len(fk.list) == 0 {
			continue
		}
		g.slots = append(g.slots, slot)
		for id, v := range fk.list {
			gid, seen := ids[v]
			if !seen {
				gid = int32(len(list))
				ids[v] = gid
				list = append(list, v)
				g.kwLen = append(g.kwLen, len(v))
				g.targets = append(g.targets, nil)
			}
			g.targets[gid] = append(g.targets[gid], groupField{slot: slot, id: int32(id)})
		}
	}
	g.m = buildMatcher(list)
	fs.group = g
}

func fieldKey(field, header string) string {
	if field == "header" {
		return "header:" + strings.ToLower(header)
	}
	return field
}

func compile(c *rules.Cond, fs *fieldSet) *node {
	if c == nil {
		return nil
	}
	n := &node{}
	for _, s := range c.All {
		n.all = append(n.all, compile(s, fs))
	}
	for _, s := range c.Any {
		n.any = append(n.any, compile(s, fs))
	}
	if c.Not != nil {
		n.not = compile(c.Not, fs)
	}
	var slot int
	if len(c.Ops) > 0 {
		slot = fs.slot(c.Field, c.Header)
	}
	desc := c.Field
	if c.Field == "header" {
		desc = "header " + c.Header
	}
	for i := range c.Ops {
		op := &c.Ops[i]
		t := opTest{kind: kindOf(op.Kind), slot: int32(slot), values: op.Values, re: op.Regexp, fail: failWhy(desc, *op), desc: desc}
		switch t.kind {
		case opContains, opContainsAny:
			for _, v := range op.Values {
				t.kw = append(t.kw, fs.add(slot, v))
			}
		case opMatches:
			if lit := requiredLiteral(op.Regexp.String()); lit != "" {
				t.kw = append(t.kw, fs.add(slot, lit))
			}
		}
		for _, v := range op.Values {
			switch t.kind {
			case opEquals:
				t.match = append(t.match, fmt.Sprintf("%s equals %q", desc, v))
			case opIn:
				t.match = append(t.match, fmt.Sprintf("%s in list (%q)", desc, v))
			case opContains, opContainsAny:
				t.match = append(t.match, fmt.Sprintf("%s %s %q", desc, op.Kind, v))
			}
		}
		n.ops = append(n.ops, t)
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
	case len(n.ops) > 0:
		return n.ops[0].fail
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
	return evalAll(n.ops, f)
}

// evalAll runs tests in order and reports whether all hold: why is the
// first failure's explanation, or all the explanations joined by "and", as
// node.eval gives them for a leaf of these ops or an all of such leaves.
func evalAll(tests []opTest, f *fields) (bool, string) {
	if len(tests) == 1 {
		return tests[0].eval(f)
	}
	var parts []string
	for i := range tests {
		ok, why := tests[i].eval(f)
		if !ok {
			return false, why
		}
		parts = append(parts, why)
	}
	return true, strings.Join(parts, " and ")
}

// conjunction returns the tests of n in the order node.eval runs them if n
// is a leaf or an all of such nodes, each leaf with at least one test, and
// false otherwise. Such a condition holds when all its tests do, and
// evalAll on them explains it as node.eval does.
func (n *node) conjunction(tests []opTest) ([]opTest, bool) {
	switch {
	case n == nil || n.any != nil || n.not != nil:
		return nil, false
	case n.all != nil:
		for _, s := range n.all {
			var ok bool
			if tests, ok = s.conjunction(tests); !ok {
				return nil, false
			}
		}
		return tests, true
	case len(n.ops) == 0:
		return nil, false
	}
	return append(tests, n.ops...), true
}

// eval runs the test on its field.
func (t *opTest) eval(f *fields) (bool, string) {
	slot := int(t.slot)
	switch t.kind {
	case opMatches:
		if len(t.kw) == 1 && !f.hits(slot)[t.kw[0]] {
			return false, t.fail // its required literal is absent
		}
		for _, v := range f.raw(slot) {
			if loc := t.re.FindStringIndex(v); loc != nil {
				return true, fmt.Sprintf("%s matches %#q (%q)", t.desc, t.re.String(), excerpt(v[loc[0]:loc[1]]))
			}
		}
	case opEquals:
		for _, v := range f.folded(slot) {
			if v == t.values[0] {
				return true, t.match[0]
			}
		}
	case opIn:
		for _, v := range f.folded(slot) {
			for j, want := range t.values {
				if v == want {
					return true, t.match[j]
				}
			}
		}
	case opContains, opContainsAny:
		hits := f.hits(slot)
		for j, id := range t.kw {
			if hits[id] {
				return true, t.match[j]
			}
		}
	}
	return false, t.fail
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
// computing each at most once per message. A fields and its buffers are
// reused from message to message (see Classifier.Classify).
//
// The folded values are folded into foldBuf and are strings that point into
// it (no copy, no allocation per message): they are valid only until reset,
// and nothing may keep them beyond the evaluation of one message. Traces
// quote rule values and raw message text, never folded text.
type fields struct {
	m        *domain.Message
	contract string
	fs       *fieldSet
	done     []uint8 // per slot: doneRaw | doneFold | doneHits
	rawVals  [][]string
	foldVals [][]string
	foldBuf  [][]byte
	hitVals  [][]bool
}

// maxFoldBuf is the largest folding buffer kept from one message to the
// next.
const maxFoldBuf = 1 << 20

const (
	doneRaw uint8 = 1 << iota
	doneFold
	doneHits
)

func newFields(fs *fieldSet) *fields {
	n := len(fs.slots)
	return &fields{
		fs:       fs,
		done:     make([]uint8, n),
		rawVals:  make([][]string, n),
		foldVals: make([][]string, n),
		foldBuf:  make([][]byte, n),
		hitVals:  make([][]bool, n),
	}
}

// reset forgets the message, so that a pooled fields holds no reference to
// its text.
func (f *fields) reset() {
	for i, d := range f.done {
		if d&doneRaw != 0 {
			clear(f.rawVals[i])
			f.rawVals[i] = f.rawVals[i][:0]
		}
		if d&doneFold != 0 {
			clear(f.foldVals[i])
			f.foldVals[i] = f.foldVals[i][:0]
			if cap(f.foldBuf[i]) > maxFoldBuf {
				f.foldBuf[i] = nil
			}
		}
		f.done[i] = 0
	}
	f.m, f.contract = nil, ""
}

// hits returns which of the field's keywords occur in its folded values,
// scanning the field once.
func (f *fields) hits(slot int) []bool {
	if f.done[slot]&doneHits != 0 {
		return f.hitVals[slot]
	}
	return f.findHits(slot)
}

func (f *fields) findHits(slot int) []bool {
	fs := f.fs
	if fs.group != nil && (slot == fs.body || slot == fs.text) {
		f.scanText()
		return f.hitVals[slot]
	}
	fk := &fs.slots[slot]
	h := f.hitBuf(slot)
	for _, v := range f.folded(slot) {
		fk.m.scanFrom(0, v, h)
	}
	f.done[slot] |= doneHits
	return h
}

// hitBuf returns the slot's hit buffer, all false.
func (f *fields) hitBuf(slot int) []bool {
	n := len(f.fs.slots[slot].list)
	h := f.hitVals[slot]
	if cap(h) < n {
		h = make([]bool, n)
	} else {
		h = h[:n]
		clear(h)
	}
	f.hitVals[slot] = h
	return h
}

// scanText finds the keywords of the subject, body and text fields (those
// not found yet) in one scan of the folded text.
func (f *fields) scanText() {
	g, subj := f.fs.group, f.fs.subject
	for _, slot := range g.slots {
		if f.done[slot]&doneHits == 0 {
			f.hitBuf(slot)
		}
	}
	subjDone := f.done[subj]&doneHits != 0
	s, b := f.folded(subj)[0], f.folded(f.fs.body)[0]
	bodyStart := len(s) + 1
	found := func(gid int32, end int) {
		for _, t := range g.targets[gid] {
			switch t.slot {
			case subj:
				if subjDone || end > len(s) {
					continue
				}
			case f.fs.body:
				if end-g.kwLen[gid] < bodyStart {
					continue
				}
			}
			f.hitVals[t.slot][t.id] = true
		}
	}
	row := g.m.scanReport(0, s, 0, found)
	row = g.m.scanReport(row, " ", len(s), found)
	g.m.scanReport(row, b, bodyStart, found)
	for _, slot := range g.slots {
		f.done[slot] |= doneHits
	}
}

func appendAddrs(out []string, as ...domain.Address) []string {
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

func (f *fields) raw(slot int) []string {
	if f.done[slot]&doneRaw != 0 {
		return f.rawVals[slot]
	}
	fk := &f.fs.slots[slot]
	v := f.rawVals[slot][:0]
	m := f.m
	switch fk.field {
	case "from":
		v = appendAddrs(v, m.From)
	case "to":
		v = appendAddrs(v, m.To...)
	case "cc":
		v = appendAddrs(v, m.Cc...)
	case "subject":
		v = append(v, m.Subject)
	case "body":
		v = append(v, m.Text)
	case "text":
		v = append(v, m.Subject+"\n"+m.Text)
	case "header":
		v = append(v, m.HeaderValues(fk.header)...)
	case "contract":
		if f.contract != "" {
			v = append(v, f.contract)
		}
	case "attachment":
		for _, a := range m.Attachments {
			v = append(v, a.Name)
		}
	}
	f.rawVals[slot] = v
	f.done[slot] |= doneRaw
	return v
}

func (f *fields) folded(slot int) []string {
	if f.done[slot]&doneFold != 0 {
		return f.foldVals[slot]
	}
	return f.fold(slot)
}

func (f *fields) fold(slot int) []string {
	out := f.foldVals[slot][:0]
	if f.fs.slots[slot].field == "text" {
		// Fold subject and body separately (each is cached) and join.
		s, b := f.folded(f.fs.subject), f.folded(f.fs.body)
		out = append(out, s[0]+" "+b[0])
	} else {
		buf := f.foldBuf[slot][:0]
		for _, v := range f.raw(slot) {
			start := len(buf)
			buf = textfold.AppendFold(buf, v)
			// If buf grows later, this string keeps pointing into the old
			// array, which is not reused.
			out = append(out, unsafe.String(unsafe.SliceData(buf[start:]), len(buf)-start))
		}
		f.foldBuf[slot] = buf
	}
	f.foldVals[slot] = out
	f.done[slot] |= doneFold
	return out
}

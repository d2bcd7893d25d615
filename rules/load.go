package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// LoadOptions are the loader's connections to the outside world, injected so
// that tests (and `gateway check` in a sandbox) control them. Zero fields get
// the defaults: os.LookupEnv and os.ReadFile.
type LoadOptions struct {
	// Getenv looks up an environment variable for ${NAME} expansion.
	Getenv func(name string) (value string, ok bool)
	// ReadFile reads the configuration file (Load) and *_file secrets.
	ReadFile func(path string) ([]byte, error)
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	return o
}

// maxNodes bounds the number of YAML nodes the loader visits, so that a file
// whose aliases expand exponentially ("billion laughs") is rejected quickly.
const maxNodes = 200_000

// Load reads and validates the configuration file at path. Relative paths in
// the file (templates.dir, *_file secrets) are resolved against the file's
// directory. On a configuration error the returned error is an Errors holding
// every problem found, each with file:line:col.
func Load(path string, opt LoadOptions) (*Config, error) {
	opt = opt.withDefaults()
	data, err := opt.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, opt)
}

// Parse validates a configuration held in memory; file names it in errors
// and anchors relative paths (Parse reads only *_file secrets, through
// opt.ReadFile). The returned error, if any, is an Errors.
func Parse(file string, data []byte, opt LoadOptions) (*Config, error) {
	l := &loader{file: file, dir: filepath.Dir(file), opt: opt.withDefaults(), budget: maxNodes, active: map[*yaml.Node]bool{}}
	root := l.parseYAML(data)
	var cfg *Config
	if root != nil {
		cfg = l.config(root)
	}
	if len(l.errs) > 0 {
		return nil, l.errs.sorted()
	}
	return cfg, nil
}

// loader walks the YAML node tree, collecting errors as it goes.
type loader struct {
	file   string
	dir    string
	opt    LoadOptions
	errs   Errors
	budget int  // nodes left to visit
	spent  bool // the budget ran out (reported once)

	active  map[*yaml.Node]bool // nodes being walked (alias cycles)
	tooDeep bool                // nesting limit reported

	// For cross-checks after all sections are read.
	staffMap   *mapNode
	addrClaims map[string]claim // contract match.addresses
}

// errAt records an error at n's position; path (if any) prefixes the message.
func (l *loader) errAt(n *yaml.Node, path, format string, args ...any) {
	l.errAtPos(l.pos(n), path, format, args...)
}

func (l *loader) errAtPos(p Pos, path, format string, args ...any) {
	if l.spent {
		return // everything after a blown node budget is noise
	}
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	l.errs = append(l.errs, Error{Pos: p, Msg: msg})
}

// pos is n's position, never with a line or column below 1.
func (l *loader) pos(n *yaml.Node) Pos {
	p := Pos{File: l.file, Line: 1, Col: 1}
	if n != nil {
		p.Line, p.Col = max(n.Line, 1), max(n.Column, 1)
	}
	return p
}

// parseYAML decodes data into a node tree and returns the root mapping, or
// nil after recording the error.
func (l *loader) parseYAML(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 is not known to panic on any input, but a configuration
		// loader must survive a hostile file: report instead of crashing.
		if r := recover(); r != nil {
			l.errAtPos(Pos{File: l.file, Line: 1, Col: 1}, "", "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errAtPos(Pos{File: l.file, Line: 1, Col: 1}, "", "empty configuration: expected a mapping with service, mailbox, smtp, staff, contracts and rules")
			return nil
		}
		l.yamlError(err, data)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		l.errAt(&next, "", "a second YAML document starts here: expected exactly one")
	case !errors.Is(err, io.EOF):
		l.yamlError(err, data)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		l.errAt(&doc, "", "expected a mapping at the top level")
		return nil
	}
	r := l.resolve(doc.Content[0])
	if r.Kind != yaml.MappingNode {
		l.errAt(r, "", "expected a mapping at the top level, got %s", describe(r))
		return nil
	}
	return r
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserErrors are the problems yaml.v3's parser (not its scanner) reports.
var parserErrors = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError reports a syntax error from yaml.v3, which gives a line for most
// errors but never a column. For errors without a line (those on the first
// line, and the reader's encoding errors) it finds the place itself.
func (l *loader) yamlError(err error, data []byte) {
	msg := err.Error()
	p := Pos{File: l.file, Line: 1, Col: 1}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n >= 1 {
			// yaml.v3 adds 1 to the 0-based line of scanner errors only;
			// parser errors name the 0-based line where the enclosing
			// construct (a flow mapping, a block sequence) started.
			if parserErrors[msg] {
				n++
			}
			p.Line = n
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		switch {
		case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "control characters"):
			p.Line, p.Col = badByte(data)
		case strings.HasPrefix(msg, "unknown anchor '"):
			name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
			if i := bytes.Index(data, []byte("*"+name)); i >= 0 {
				p.Line, p.Col = lineCol(data, i)
			}
		}
	}
	l.errAtPos(p, "", "invalid YAML: %s", msg)
}

// badByte finds the first byte YAML rejects (invalid UTF-8, or a control
// character other than tab and line breaks) and returns its line and column.
func badByte(data []byte) (line, col int) {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f ||
			(r >= 0x80 && r < 0xa0 && r != 0x85) || r == 0xfffe || r == 0xffff {
			return lineCol(data, i)
		}
		i += size
	}
	return 1, 1
}

// lineCol converts a byte offset into a 1-based line and column (in runes).
func lineCol(data []byte, off int) (line, col int) {
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return line, 1 + utf8.RuneCount(data[start:off])
}

// resolve follows aliases to the node they name.
func (l *loader) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// spend charges k node visits against the budget and reports whether there
// is budget left.
func (l *loader) spend(n *yaml.Node, k int) bool {
	l.budget -= k
	if l.budget >= 0 {
		return true
	}
	if !l.spent {
		l.errAt(n, "", "configuration too large: more than %d YAML nodes after expanding aliases", maxNodes)
		l.spent = true
	}
	return false
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names a node's kind for "expected X, got Y" messages. It never
// includes the node's value.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a string"
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// entry is one key: value pair of a mapping.
type entry struct {
	name     string
	key, val *yaml.Node
	path     string
}

// mapNode is a validated mapping: duplicate and unknown keys were reported,
// merge keys (<<) applied. An absent or null mapping is empty.
type mapNode struct {
	l       *loader
	path    string
	n       *yaml.Node // position for "missing key" errors
	present bool       // the mapping was written (possibly empty)
	entries []entry
	byName  map[string]*entry
}

// keySet describes what keys a mapping may have: the names, and the noun for
// unknown ones ("key", "category", ...). With no names, any key is allowed.
type keySet struct {
	noun   string
	names  []string
	list   bool   // list the names in the unknown-key message
	expect string // what to list instead of the names
}

func keys(names ...string) keySet { return keySet{noun: "key", names: names} }

// mapping checks that n is a mapping (null counts as empty) and indexes its
// keys; at positions "missing key" errors when n is absent.
func (l *loader) mapping(path string, n, at *yaml.Node, ks keySet) *mapNode {
	m := &mapNode{l: l, path: path, n: at, byName: map[string]*entry{}}
	n = l.resolve(n)
	if n != nil {
		m.n = n
	}
	if isNull(n) {
		m.present = n != nil
		return m
	}
	if n.Kind != yaml.MappingNode {
		l.errAt(n, path, "expected a mapping, got %s", describe(n))
		return m
	}
	m.present = true
	if !l.active[n] {
		l.active[n] = true
		defer delete(l.active, n)
	}
	var merged []entry
	l.collect(m, n, ks, &merged, 0)
	have := map[string]bool{}
	for _, e := range m.entries {
		have[e.name] = true
	}
	for _, e := range merged {
		if !have[e.name] {
			have[e.name] = true
			m.entries = append(m.entries, e)
		}
	}
	for i := range m.entries {
		m.byName[m.entries[i].name] = &m.entries[i]
	}
	return m
}

// collect adds n's entries to m, reporting duplicates and unknown keys, and
// gathers merged (<<) entries, which explicit keys override.
func (l *loader) collect(m *mapNode, n *yaml.Node, ks keySet, merged *[]entry, depth int) {
	if !l.spend(n, len(n.Content)/2+1) {
		return
	}
	explicit := depth == 0
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			l.merge(m, v, ks, merged, depth)
			continue
		}
		rk := l.resolve(k)
		if rk.Kind != yaml.ScalarNode || isNull(rk) {
			l.errAt(k, m.path, "expected a key name, got %s", describe(rk))
			continue
		}
		name := rk.Value
		if first, dup := seen[name]; dup {
			l.errAt(k, m.path, "duplicate key %q (first at %s)", name, l.pos(first))
			continue
		}
		seen[name] = k
		if len(ks.names) > 0 && !contains(ks.names, name) {
			msg := fmt.Sprintf("unknown %s %q%s", ks.noun, name, suggest(name, ks.names))
			switch {
			case ks.expect != "":
				msg += "; expected " + ks.expect
			case ks.list:
				msg += "; expected " + oneOf(ks.names)
			}
			l.errAt(k, m.path, "%s", msg)
			continue
		}
		e := entry{name: name, key: k, val: v, path: join(m.path, name)}
		if explicit {
			m.entries = append(m.entries, e)
		} else {
			*merged = append(*merged, e)
		}
	}
}

// merge applies a merge key's value: a mapping or a list of mappings.
func (l *loader) merge(m *mapNode, v *yaml.Node, ks keySet, merged *[]entry, depth int) {
	if depth > 10 {
		l.errAt(v, m.path, "merge keys nested too deeply")
		return
	}
	v = l.resolve(v)
	if l.active[v] {
		l.errAt(v, m.path, "merge key (<<): the mapping merges itself")
		return
	}
	l.active[v] = true
	defer delete(l.active, v)
	switch v.Kind {
	case yaml.MappingNode:
		l.collect(m, v, ks, merged, depth+1)
	case yaml.SequenceNode:
		for _, c := range v.Content {
			c = l.resolve(c)
			if c.Kind != yaml.MappingNode {
				l.errAt(c, m.path, "merge key (<<): expected a mapping, got %s", describe(c))
				continue
			}
			l.collect(m, c, ks, merged, depth+1)
		}
	default:
		l.errAt(v, m.path, "merge key (<<): expected a mapping or a list of mappings, got %s", describe(v))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// get returns the entry for key, or nil when absent.
func (m *mapNode) get(key string) *entry { return m.byName[key] }

// has reports whether key is present (even with a null value).
func (m *mapNode) has(key string) bool { return m.byName[key] != nil }

// require reports a missing key.
func (m *mapNode) require(key string) bool {
	if m.has(key) {
		return true
	}
	m.l.errAt(m.n, m.path, "missing required key %q", key)
	return false
}

// str returns key's string value (env-expanded), or def when absent.
func (m *mapNode) str(key, def string) string {
	e := m.get(key)
	if e == nil {
		return def
	}
	s, _ := m.l.scalar(e.path, e.val)
	return s
}

// nonEmpty is str for a key that must not be empty when present.
func (m *mapNode) nonEmpty(key, def string) string {
	e := m.get(key)
	if e == nil {
		return def
	}
	s, ok := m.l.scalar(e.path, e.val)
	if ok && s == "" {
		m.l.errAt(e.val, e.path, "must not be empty")
	}
	return s
}

// scalar returns a scalar node's value after ${ENV} expansion. A null node is
// "". Its messages never quote the value, so it serves secrets too.
func (l *loader) scalar(path string, n *yaml.Node) (string, bool) {
	n = l.resolve(n)
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		l.errAt(n, path, "expected a string, got %s", describe(n))
		return "", false
	}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
	default:
		l.errAt(n, path, "unsupported YAML tag %q: write a plain value", tag)
		return "", false
	}
	s, err := expand(n.Value, l.opt.Getenv)
	if err != nil {
		l.errAt(n, path, "%v", err)
		return "", false
	}
	return s, true
}

// integer parses an integer value within [lo, hi].
func (l *loader) integer(path string, n *yaml.Node, lo, hi int) (int, bool) {
	s, ok := l.scalar(path, n)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		l.errAt(n, path, "expected an integer, got %q", s)
		return 0, false
	}
	if v < lo || v > hi {
		l.errAt(n, path, "%d is out of range: expected %d to %d", v, lo, hi)
		return 0, false
	}
	return v, true
}

func (m *mapNode) integer(key string, def, lo, hi int) int {
	e := m.get(key)
	if e == nil || isNull(m.l.resolve(e.val)) {
		return def
	}
	if v, ok := m.l.integer(e.path, e.val, lo, hi); ok {
		return v
	}
	return def
}

// boolean parses true or false (as YAML 1.2 spells them).
func (m *mapNode) boolean(key string, def bool) bool {
	e := m.get(key)
	if e == nil || isNull(m.l.resolve(e.val)) {
		return def
	}
	s, ok := m.l.scalar(e.path, e.val)
	if !ok {
		return def
	}
	switch s {
	case "true", "True", "TRUE":
		return true
	case "false", "False", "FALSE":
		return false
	}
	m.l.errAt(e.val, e.path, "expected true or false, got %q", s)
	return def
}

// choice returns key's value, which must be one of choices.
func (m *mapNode) choice(key, def string, choices ...string) string {
	e := m.get(key)
	if e == nil {
		return def
	}
	s, ok := m.l.scalar(e.path, e.val)
	if !ok {
		return def
	}
	if !contains(choices, s) {
		m.l.errAt(e.val, e.path, "invalid value %q%s: expected %s", s, suggest(s, choices), oneOf(choices))
		return def
	}
	return s
}

// strings returns a list of strings (a null value is an empty list).
func (l *loader) strList(path string, n *yaml.Node) ([]*yaml.Node, []string) {
	n = l.resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errAt(n, path, "expected a list, got %s", describe(n))
		return nil, nil
	}
	if !l.spend(n, len(n.Content)+1) {
		return nil, nil
	}
	var nodes []*yaml.Node
	var out []string
	for i, c := range n.Content {
		s, ok := l.scalar(index(path, i), c)
		if ok {
			nodes = append(nodes, l.resolve(c))
			out = append(out, s)
		}
	}
	return nodes, out
}

// seq returns a list's items (a null value is an empty list).
func (l *loader) seq(path string, n *yaml.Node) []*yaml.Node {
	n = l.resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errAt(n, path, "expected a list, got %s", describe(n))
		return nil
	}
	if !l.spend(n, len(n.Content)+1) {
		return nil
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = l.resolve(c)
	}
	return items
}

// secret reads key or key_file (never both) into a Secret.
func (m *mapNode) secret(key string) Secret {
	e, f := m.get(key), m.get(key+"_file")
	if e != nil && f != nil {
		m.l.errAt(f.key, m.path, "%s and %s_file are mutually exclusive: use one", key, key)
		return Secret{}
	}
	switch {
	case e != nil:
		s, _ := m.l.scalar(e.path, e.val)
		return NewSecret(s)
	case f != nil:
		p, ok := m.l.scalar(f.path, f.val)
		if !ok {
			return Secret{}
		}
		if p == "" {
			m.l.errAt(f.val, f.path, "must not be empty: expected the path of a file holding the secret")
			return Secret{}
		}
		data, err := m.l.opt.ReadFile(m.l.abs(p))
		if err != nil {
			m.l.errAt(f.val, f.path, "read secret: %v", err)
			return Secret{}
		}
		s := strings.TrimRight(string(data), "\r\n")
		if s == "" {
			m.l.errAt(f.val, f.path, "file %s is empty", p)
		}
		return NewSecret(s)
	}
	return Secret{}
}

// abs resolves p against the configuration file's directory.
func (l *loader) abs(p string) string {
	if filepath.IsAbs(p) || l.dir == "" {
		return p
	}
	return filepath.Join(l.dir, p)
}

// expand replaces ${NAME} and ${NAME:-default} with environment values; $${
// is a literal ${. Errors name the variable, never a value.
func expand(s string, getenv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New(`unterminated "${": expected ${NAME}, or $${ for a literal "${"`)
		}
		expr := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable name %q: expected letters, digits and _", name)
		}
		v, ok := getenv(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} for a default)", name, name)
		}
		b.WriteString(v)
	}
}

func validEnvName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && !('A' <= c && c <= 'Z') && !('a' <= c && c <= 'z') && !(i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

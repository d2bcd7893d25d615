package notify

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	texttemplate "text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"
)

// Message kinds: one template set (subject, text, HTML) each per language.
const (
	KindAck           = "ack"            // acknowledgement of a new ticket, to the customer (AckData)
	KindForward       = "forward"        // block before the copy sent to the staff queue (ForwardData)
	KindResolved      = "resolved"       // ticket resolved, to the customer (ResolvedData)
	KindUnknownSender = "unknown_sender" // polite notice to a sender with no contract (UnknownSenderData)
	KindCommandError  = "command_error"  // commands not applied, to the staff member (CommandErrorData)
	KindWarn          = "warn"           // an SLA deadline approaches, to staff (SLAData)
	KindBreach        = "breach"         // an SLA deadline passed, to staff (SLAData)
)

// Template languages (a contract's `language`; "auto" is resolved by the
// caller to one of these).
const (
	LangHebrew  = "he"
	LangEnglish = "en"
)

// MaxSubjectRunes caps a rendered subject. A longer one is cut and ends with
// "…"; the ticket tag, which comes first, always survives.
const MaxSubjectRunes = 200

// ErrUnknownTemplate is returned (wrapped) by Render for a kind or language
// that has no templates.
var ErrUnknownTemplate = errors.New("no such template")

var (
	allKinds = []string{KindAck, KindForward, KindResolved, KindUnknownSender, KindCommandError, KindWarn, KindBreach}
	allLangs = []string{LangHebrew, LangEnglish}
)

// Kinds returns every message kind, in a stable order.
func Kinds() []string { return slices.Clone(allKinds) }

// Languages returns every template language.
func Languages() []string { return slices.Clone(allLangs) }

//go:embed templates/*.tmpl
var builtinFS embed.FS

// Builtin returns the built-in template files (flat, named as in
// TemplateFiles): a starting point for an administrator's overrides.
func Builtin() fs.FS {
	sub, err := fs.Sub(builtinFS, "templates")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return sub
}

// part is one of the three templates of a kind × language.
type part int

const (
	partSubject part = iota
	partText
	partHTML
)

var partSuffix = [...]string{partSubject: "subject.tmpl", partText: "txt.tmpl", partHTML: "html.tmpl"}

func fileName(kind, lang string, p part) string {
	return kind + "." + lang + "." + partSuffix[p]
}

// TemplateFiles returns the name of every template file, sorted: the names a
// `templates.dir` may contain.
func TemplateFiles() []string {
	var names []string
	for _, k := range allKinds {
		for _, l := range allLangs {
			for p := range partSuffix {
				names = append(names, fileName(k, l, part(p)))
			}
		}
	}
	slices.Sort(names)
	return names
}

// Rendered is one rendered message. Subject is a single line, safe for a
// header. Text is the text/plain part (LF line ends, a final newline). HTML
// is the text/html part; it is empty when an override template renders to
// nothing, meaning "send text only". The HTML of KindForward is a fragment to
// place before the forwarded message, not a whole document.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// TemplateError is a template that failed to load or render. Its text is
// "file:line:col: message" (line and col when known; col counts bytes from
// 1), where file is the override's path or "built-in <name>".
type TemplateError struct {
	File string
	Line int // 0: unknown
	Col  int // 0: unknown
	Msg  string

	err error // what text/template or html/template reported, if anything
}

// Unwrap returns the template package's own error (a
// text/template.ExecError, say), or nil.
func (e *TemplateError) Unwrap() error { return e.err }

func (e *TemplateError) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// tmplSet is the three parsed templates of one kind × language. The parsed
// templates are never executed: every Render executes clones with its own
// date and label functions, so a Templates is safe for concurrent use.
type tmplSet struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
	origin  [3]string // per part: where the source came from, for errors
}

type setKey struct{ kind, lang string }

// Templates is a loaded template set: the built-ins with any overrides from
// `templates.dir`. It is immutable and safe for concurrent use.
type Templates struct {
	sets map[setKey]*tmplSet
	// bound caches, per template set, language and zone, clones with the
	// date and label functions bound: cloning and re-escaping an HTML
	// template on every render cost about a millisecond per
	// acknowledgement.
	bound sync.Map // boundKey -> *boundSet
}

type boundKey struct {
	set        *tmplSet
	lang, zone string
}

// LoadTemplates parses the built-in templates and, when dir is not empty,
// the overrides in dir: a file named like a built-in (see TemplateFiles)
// replaces it. Any other file in dir is an error (dot files such as
// .gitkeep are skipped), as are sub-directories and parse errors. All errors
// are reported at once, joined, each a *TemplateError naming the file and,
// for a parse error, the line.
//
// LoadTemplates does not render anything; call Check as well, at start-up
// and in `gateway check`, so that an override that fails on real data is
// found before the first customer mail.
func LoadTemplates(dir string) (*Templates, error) {
	var override fs.FS
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("load templates: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("load templates: %s is not a directory", dir)
		}
		override = os.DirFS(dir)
	}
	return loadTemplates(Builtin(), override, dir)
}

// loadTemplates parses builtin, then replaces files from override (whose
// files are shown in errors as under dir).
func loadTemplates(builtin, override fs.FS, dir string) (*Templates, error) {
	known := make(map[string]bool)
	for _, n := range TemplateFiles() {
		known[n] = true
	}
	type src struct{ text, origin string }
	sources := make(map[string]src, len(known))
	var errs []error
	for n := range known {
		b, err := fs.ReadFile(builtin, n)
		if err != nil {
			errs = append(errs, &TemplateError{File: "built-in " + n, Msg: "missing: " + err.Error()})
			continue
		}
		sources[n] = src{string(b), "built-in " + n}
	}
	if override != nil {
		entries, err := fs.ReadDir(override, ".")
		if err != nil {
			return nil, fmt.Errorf("load templates: read %s: %w", dir, err)
		}
		for _, e := range entries {
			name := e.Name()
			path := filepath.Join(dir, name)
			switch {
			case strings.HasPrefix(name, "."):
				continue
			case e.IsDir():
				errs = append(errs, &TemplateError{File: path, Msg: "unexpected directory: templates.dir holds template files only"})
				continue
			case !known[name]:
				errs = append(errs, &TemplateError{File: path, Msg: unknownFileMsg(name)})
				continue
			}
			b, err := fs.ReadFile(override, name)
			if err != nil {
				errs = append(errs, &TemplateError{File: path, Msg: err.Error()})
				continue
			}
			if !utf8.Valid(b) {
				errs = append(errs, &TemplateError{File: path, Msg: "not valid UTF-8"})
				continue
			}
			sources[name] = src{string(b), path}
		}
	}

	t := &Templates{sets: make(map[setKey]*tmplSet)}
	textFuncs, htmlFuncs := formatter{}.textFuncs(), formatter{}.htmlFuncs()
	for _, k := range allKinds {
		for _, l := range allLangs {
			s := &tmplSet{}
			for p := range partSuffix {
				n := fileName(k, l, part(p))
				sc, ok := sources[n]
				if !ok {
					continue // reported above
				}
				s.origin[p] = sc.origin
				var err error
				switch part(p) {
				case partHTML:
					s.html, err = htmltemplate.New(n).Option("missingkey=error").Funcs(htmlFuncs).Parse(sc.text)
				case partSubject:
					s.subject, err = texttemplate.New(n).Option("missingkey=error").Funcs(textFuncs).Parse(sc.text)
				case partText:
					s.text, err = texttemplate.New(n).Option("missingkey=error").Funcs(textFuncs).Parse(sc.text)
				}
				if err != nil {
					errs = append(errs, locate(err, n, sc.origin))
				}
			}
			t.sets[setKey{k, l}] = s
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func unknownFileMsg(name string) string {
	msg := "unknown template file; expected <kind>.<lang>.{subject,txt,html}.tmpl with kind one of " +
		strings.Join(allKinds, ", ") + " and lang one of " + strings.Join(allLangs, ", ")
	// Point at the likely intent: the closest known name, if it is close.
	best, bestDist := "", 4
	for _, n := range TemplateFiles() {
		d := min(editDistance(strings.ToLower(name), n), editDistance(strings.ToLower(name), strings.TrimSuffix(n, ".tmpl")))
		if d < bestDist {
			best, bestDist = n, d
		}
	}
	if best != "" {
		msg += " (did you mean " + best + "?)"
	}
	return msg
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// locate turns a text/template or html/template error about template name
// into a *TemplateError with the file, line and column it names.
func locate(err error, name, origin string) *TemplateError {
	msg := err.Error()
	for _, p := range []string{"template: ", "html/template:"} {
		if rest, ok := strings.CutPrefix(msg, p); ok {
			msg = rest
			break
		}
	}
	te := &TemplateError{File: origin, Msg: msg, err: err}
	rest, ok := strings.CutPrefix(msg, name+":")
	if !ok {
		return te
	}
	line, rest, ok := cutInt(rest)
	if !ok || !strings.HasPrefix(rest, ":") {
		return te
	}
	te.Line, rest = line, rest[1:]
	if col, r2, ok := cutInt(rest); ok && strings.HasPrefix(r2, ":") {
		// text/template counts columns in bytes from 0; editors and
		// `file:line:col` readers count from 1.
		te.Col, rest = col+1, r2[1:]
	}
	te.Msg = strings.TrimSpace(rest)
	return te
}

// cutInt splits a leading decimal number off s.
func cutInt(s string) (int, string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, s, false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, s, false
	}
	return n, s[i:], true
}

// zoneOf returns the zone carried by template data (see Base.Location).
func zoneOf(data any) (*time.Location, error) {
	if data == nil {
		return nil, errors.New("nil template data")
	}
	if v := reflect.ValueOf(data); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("nil template data (%T)", data)
	}
	if z, ok := data.(interface{ Location() *time.Location }); ok {
		return z.Location(), nil
	}
	return nil, nil // date functions will fail if the template uses one
}

// Render renders the subject, text and HTML of kind in lang with data (the
// kind's data type: AckData for KindAck, and so on), formatting dates in the
// zone data.Location() returns. Errors wrap ErrUnknownTemplate or a
// *TemplateError.
func (t *Templates) Render(kind, lang string, data any) (Rendered, error) {
	r, err := t.render(kind, lang, data)
	if err != nil {
		return Rendered{}, fmt.Errorf("render %s.%s: %w", kind, lang, err)
	}
	return r, nil
}

func (t *Templates) render(kind, lang string, data any) (Rendered, error) {
	s, ok := t.sets[setKey{kind, lang}]
	if !ok {
		return Rendered{}, ErrUnknownTemplate
	}
	loc, err := zoneOf(data)
	if err != nil {
		return Rendered{}, err
	}
	b, err := t.bind(s, formatter{lang: lang, loc: loc})
	if err != nil {
		return Rendered{}, err
	}
	view := templateView(data)
	fail := func(err error, p part, name string) error {
		return locate(renamedError(err, view, data), name, s.origin[p])
	}

	var r Rendered
	subject, err := b.subject.execute(view)
	if err != nil {
		return Rendered{}, fail(err, partSubject, s.subject.Name())
	}
	if r.Subject = cleanSubject(subject, lang); r.Subject == "" || r.Subject == rlm {
		return Rendered{}, &TemplateError{File: s.origin[partSubject], Msg: "renders an empty subject"}
	}
	text, err := b.text.execute(view)
	if err != nil {
		return Rendered{}, fail(err, partText, s.text.Name())
	}
	if r.Text = cleanText(text, lang); r.Text == "" {
		return Rendered{}, &TemplateError{File: s.origin[partText], Msg: "renders an empty text part"}
	}
	html, err := b.html.execute(view)
	if err != nil {
		return Rendered{}, fail(err, partHTML, s.html.Name())
	}
	r.HTML = trimHTML(html)
	return r, nil
}

// trimHTML is html without leading and trailing white space and with a
// final newline, or "" when nothing else is left. When the newline is
// already there (a template file ends with one), the result is a slice of
// html rather than a copy.
func trimHTML(html string) string {
	rest := strings.TrimLeftFunc(html, unicode.IsSpace)
	trimmed := strings.TrimRightFunc(rest, unicode.IsSpace) // strings.TrimSpace(html)
	if trimmed == "" {
		return ""
	}
	start := len(html) - len(rest)
	if end := start + len(trimmed); end < len(html) && html[end] == '\n' {
		return html[start : end+1]
	}
	return trimmed + "\n"
}

// boundSet is a tmplSet's templates cloned and bound to one language's and
// zone's functions.
type boundSet struct {
	subject, text *boundTemplate[*texttemplate.Template]
	html          *boundTemplate[*htmltemplate.Template]
}

// bind returns s bound to f's functions, cloning it on first use.
func (t *Templates) bind(s *tmplSet, f formatter) (*boundSet, error) {
	zone := ""
	if f.loc != nil {
		zone = f.loc.String()
	}
	k := boundKey{set: s, lang: f.lang, zone: zone}
	if b, ok := t.bound.Load(k); ok {
		return b.(*boundSet), nil
	}
	textFuncs, htmlFuncs := f.textFuncs(), f.htmlFuncs()
	subject, err := s.subject.Clone()
	if err != nil {
		return nil, err
	}
	text, err := s.text.Clone()
	if err != nil {
		return nil, err
	}
	html, err := s.html.Clone()
	if err != nil {
		return nil, err
	}
	subject, text, html = subject.Funcs(textFuncs), text.Funcs(textFuncs), html.Funcs(htmlFuncs)
	b := &boundSet{
		subject: &boundTemplate[*texttemplate.Template]{tmpl: subject, funcs: textFuncs, tree: func() *parse.Tree { return subject.Tree }},
		text:    &boundTemplate[*texttemplate.Template]{tmpl: text, funcs: textFuncs, tree: func() *parse.Tree { return text.Tree }},
		// html/template escapes its tree on the first Execute; the
		// compiled renderer is built from the escaped tree, after a
		// first successful render.
		html: &boundTemplate[*htmltemplate.Template]{tmpl: html, funcs: htmlFuncs, html: true, tree: func() *parse.Tree { return html.Tree }},
	}
	actual, _ := t.bound.LoadOrStore(k, b)
	return actual.(*boundSet), nil
}

// boundTemplate is a template bound to one language's and zone's funcs,
// with the size of its largest output so far (the next output's buffer is
// allocated once at that size instead of growing by doubling) and, once it
// has rendered successfully, its compiled form (tmplcompile.go).
type boundTemplate[T interface {
	Execute(io.Writer, any) error
}] struct {
	tmpl  T
	funcs map[string]any
	html  bool
	tree  func() *parse.Tree
	hint  atomic.Int64
	// prog is the compiled template; compiled is set once compilation has
	// been tried, so that a template it does not cover is not tried
	// again.
	prog     atomic.Pointer[cprog]
	compiled atomic.Bool
}

func (b *boundTemplate[T]) execute(data any) (string, error) {
	var out strings.Builder
	out.Grow(int(b.hint.Load()))
	prog := b.prog.Load()
	if prog == nil || prog.execute(&out, data) != nil {
		// Not compiled, or a case the compiled renderer leaves to
		// text/template: render (again) on text/template, which decides
		// the output or the error.
		out.Reset()
		out.Grow(int(b.hint.Load()))
		if err := b.tmpl.Execute(&out, data); err != nil {
			return "", err
		}
		if prog == nil && !b.compiled.Swap(true) {
			if p, err := compileTree(b.tree(), b.funcs, b.html); err == nil {
				b.prog.Store(p)
			}
		}
	}
	if n := int64(out.Len()); n > b.hint.Load() {
		b.hint.Store(n + n/8)
	}
	return out.String(), nil
}

// cleanSubject makes a rendered subject safe for a header: one line, no
// control or bidi-override characters, trimmed, capped. A Hebrew subject
// starts with a Hebrew letter or U+200F so that clients lay it out right to
// left.
func cleanSubject(s, lang string) string {
	s = oneLine(s)
	if s == "" {
		return ""
	}
	if lang == LangHebrew && !startsRTL(s) {
		s = rlm + s
	}
	return truncateRunes(s, MaxSubjectRunes)
}

// cleanText normalises a rendered text part: LF line ends, no control
// characters but tab, no bidi overrides, no trailing white space, at most one
// blank line in a row, a final newline. In Hebrew every line starts with a
// Hebrew letter or U+200F.
func cleanText(s, lang string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if needsTextRune(s) {
		s = strings.Map(textRune, s)
	}
	var b strings.Builder
	if lang == LangHebrew { // room for an RLM before every line
		b.Grow(len(s) + len(rlm)*(strings.Count(s, "\n")+1))
	} else {
		b.Grow(len(s) + 1)
	}
	blank := false
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimRightFunc(line, unicode.IsSpace)
		if line == "" {
			blank = b.Len() > 0
			continue
		}
		if blank {
			b.WriteByte('\n')
			blank = false
		}
		if lang == LangHebrew && !startsRTL(line) {
			b.WriteString(rlm)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// textRune is the character filter of cleanText: line and paragraph
// separators become LF, other controls but tab and bidi controls go.
func textRune(r rune) rune {
	switch {
	case r == '\n' || r == '\t':
		return r
	case r == '\u2028' || r == '\u2029':
		return '\n'
	case unicode.IsControl(r) || isStripped(r):
		return -1
	}
	return r
}

// needsTextRune reports whether strings.Map(textRune, s) differs from s
// (invalid UTF-8 included, which Map replaces), without calling textRune
// for every ASCII byte.
func needsTextRune(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if (c < ' ' && c != '\n' && c != '\t') || c == 0x7F {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || textRune(r) != r {
			return true
		}
		i += n
	}
	return false
}

// Check renders every template of every kind and language against the
// sample data of its kind, every variant of it (a fault, an IMAC, over
// quota, outside business hours, ...), so that an override that fails on a
// branch real data will take is found by `gateway check`. All failures are
// reported, each once, as *TemplateError values joined.
func (t *Templates) Check() error {
	var errs []error
	seen := make(map[string]bool)
	for _, k := range allKinds {
		for _, l := range allLangs {
			for _, s := range samples(k) {
				_, err := t.render(k, l, s.data)
				if err == nil {
					continue
				}
				var te *TemplateError
				if !errors.As(err, &te) {
					te = &TemplateError{File: fileName(k, l, partText), Msg: err.Error()}
				}
				key := te.Error()
				if seen[key] {
					continue
				}
				seen[key] = true
				errs = append(errs, &TemplateError{File: te.File, Line: te.Line, Col: te.Col,
					Msg: te.Msg + " (with sample data " + strconv.Quote(s.name) + ")"})
			}
		}
	}
	return errors.Join(errs...)
}

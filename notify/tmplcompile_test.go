package notify

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"reflect"
	"strings"
	"testing"
	texttemplate "text/template"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

// slowAndCompiled renders bt's template with view on text/template (or
// html/template) and on the compiled renderer, which must cover it.
func slowAndCompiled[T interface {
	Execute(io.Writer, any) error
}](t *testing.T, name string, bt *boundTemplate[T], view any) {
	t.Helper()
	var want strings.Builder
	if err := bt.tmpl.Execute(&want, view); err != nil {
		t.Fatalf("%s: text/template: %v", name, err)
	}
	p, err := compileTree(bt.tree(), bt.funcs, bt.html)
	if err != nil {
		t.Fatalf("%s: the built-in template is not compiled: %v", name, err)
	}
	var got strings.Builder
	if err := p.execute(&got, view); err != nil {
		t.Fatalf("%s: the compiled renderer gave up (%v) on a built-in template", name, err)
	}
	if got.String() != want.String() {
		t.Errorf("%s: compiled output differs from text/template's\n--- text/template\n%s\n--- compiled\n%s", name, want.String(), got.String())
	}
}

// TestCompiledMatchesTextTemplate renders every sample, plain and with
// hostile customer text, of every kind and language, with the view and with
// the public data type (no view: fields of embedded structs) on both
// renderers: the compiled one must cover every built-in template and
// produce text/template's output byte for byte.
func TestCompiledMatchesTextTemplate(t *testing.T) {
	tm := builtins(t)
	for _, kind := range Kinds() {
		for _, lang := range Languages() {
			s := tm.sets[setKey{kind, lang}]
			for _, smp := range samples(kind) {
				for _, data := range []any{smp.data, customerControlled(smp.data)} {
					loc, err := zoneOf(data)
					if err != nil {
						t.Fatal(err)
					}
					b, err := tm.bind(s, formatter{lang: lang, loc: loc})
					if err != nil {
						t.Fatal(err)
					}
					for _, view := range []any{templateView(data), data} {
						name := kind + "." + lang + "/" + smp.name
						slowAndCompiled(t, name+" subject", b.subject, view)
						slowAndCompiled(t, name+" text", b.text, view)
						slowAndCompiled(t, name+" html", b.html, view)
					}
				}
			}
		}
	}
}

// TestCompiledRenderIsUsed checks that Render goes through the compiled
// renderer after its first render (not only that it could), and that a
// render the compiled renderer gives up on still gets text/template's
// output.
func TestCompiledRenderIsUsed(t *testing.T) {
	tm := builtins(t)
	data := SampleData(KindAck).(AckData)
	first, err := tm.Render(KindAck, LangEnglish, data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tm.bind(tm.sets[setKey{KindAck, LangEnglish}], formatter{lang: LangEnglish, loc: data.Loc})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []bool{b.subject.prog.Load() != nil, b.text.prog.Load() != nil, b.html.prog.Load() != nil} {
		if !p {
			t.Fatal("a built-in ack template was not compiled after its first render")
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := tm.Render(KindAck, LangEnglish, data); err != nil {
			t.Fatal(err)
		}
	})
	// text/template needed ~276 allocations for this render.
	if allocs > 120 {
		t.Errorf("a compiled ack render allocates %.0f times; the compiled renderer is not in use", allocs)
	}
	again, err := tm.Render(KindAck, LangEnglish, data)
	if err != nil || again != first {
		t.Fatalf("the compiled render differs from the first (text/template) one: %v", err)
	}
}

// TestCompiledGivesUpToTextTemplate: an override the compiled renderer
// does not cover, or a value it leaves alone, renders and fails exactly as
// on text/template.
func TestCompiledGivesUpToTextTemplate(t *testing.T) {
	dir := writeOverrides(t, map[string]string{
		// printf is not compiled: the whole template runs on text/template.
		"ack.en.subject.tmpl": `{{printf "%s #%d" .Tag 7}}`,
		// A field the data lacks: the compiled renderer gives up at run time
		// and text/template reports the error.
		"ack.en.txt.tmpl": `{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}{{.TicketID}}`,
	})
	tm, err := LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := SampleData(KindAck).(AckData)
	for range 3 { // the first render compiles; the others use it
		if _, err := tm.Render(KindAck, LangEnglish, data); err == nil || !strings.Contains(err.Error(), "Labels") {
			t.Fatalf("err = %v, want text/template's error about .Labels", err)
		}
	}
	dir = writeOverrides(t, map[string]string{
		"ack.en.subject.tmpl": `{{printf "%s #%d" .Tag 7}}`,
		"ack.en.txt.tmpl":     `{{with .IMACDate}}{{.Year}}{{end}} {{.TicketID}} {{if .Deferred}}x{{else}}{{not .Billable | not}}{{end}}`,
	})
	if tm, err = LoadTemplates(dir); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r, err := tm.Render(KindAck, LangEnglish, data)
		if err != nil {
			t.Fatal(err)
		}
		if r.Subject != "[ACME-0042] #7" || r.Text != "1 ACME-0042 false\n" {
			t.Fatalf("rendered %q / %q", r.Subject, r.Text)
		}
	}
}

// compiledVsText renders src on text/template and on the compiled renderer
// with view; a compiled render that succeeds must be text/template's.
func compiledVsText(t *testing.T, src string, view any) {
	f := formatter{lang: LangEnglish, loc: time.UTC}
	tt, err := texttemplate.New("t").Option("missingkey=error").Funcs(f.textFuncs()).Parse(src)
	if err != nil {
		return
	}
	var want strings.Builder
	wantErr := tt.Execute(&want, view)
	p, err := compileTree(tt.Tree, f.textFuncs(), false)
	if err != nil {
		if !errors.Is(err, errUncompiled) {
			t.Fatalf("compile %q: %v", src, err)
		}
		return
	}
	var got strings.Builder
	if err := p.execute(&got, view); err != nil {
		return // left to text/template
	}
	if wantErr != nil {
		t.Fatalf("%q: the compiled renderer succeeded with %q where text/template fails: %v", src, got.String(), wantErr)
	}
	if got.String() != want.String() {
		t.Fatalf("%q: compiled %q, text/template %q", src, got.String(), want.String())
	}
}

// compiledVsHTML is compiledVsText for html/template; with must, the
// compiled renderer has to cover the template and the render.
func compiledVsHTML(t *testing.T, src string, view any, must bool) {
	f := formatter{lang: LangEnglish, loc: time.UTC}
	ht, err := htmltemplate.New("t").Option("missingkey=error").Funcs(f.htmlFuncs()).Parse(src)
	if err != nil {
		return
	}
	var want strings.Builder
	wantErr := ht.Execute(&want, view)
	if ht.Tree == nil {
		return
	}
	p, err := compileTree(ht.Tree, f.htmlFuncs(), true)
	if err != nil {
		if must {
			t.Fatalf("%q is not compiled: %v", src, err)
		}
		return
	}
	var got strings.Builder
	if err := p.execute(&got, view); err != nil {
		if must {
			t.Fatalf("%q: the compiled renderer gave up: %v", src, err)
		}
		return
	}
	if wantErr != nil {
		t.Fatalf("%q: the compiled renderer succeeded with %q where html/template fails: %v", src, got.String(), wantErr)
	}
	if got.String() != want.String() {
		t.Fatalf("%q: compiled %q, html/template %q", src, got.String(), want.String())
	}
}

var compiledSeeds = []string{
	`{{.TicketID}} {{.Subject}}`,
	`{{with oneLine .CustomerName}}Hello {{bidi .}},{{else}}Hello,{{end}}`,
	`{{if eq .Category "imac"}}an{{else}}a{{end}} {{categoryLong .Category}}`,
	`{{- if ne .Category "imac"}} (priority {{priority .Priority}}){{end}}.`,
	`{{if and (not .IMACDate.IsZero) .IMACQuota}}{{.IMACQuota}}{{end}}`,
	`{{if or .Billable .Deferred}}b{{end}}{{or .Subject "x"}}{{and .Subject 0}}`,
	`{{$x := .TicketID}}{{$x}}{{$x = "y"}}{{$x}}{{$.Tag}}`,
	`{{range $i, $r := .Rules}}{{if $i}}, {{end}}{{oneLine $r}}{{else}}none{{end}}`,
	`{{range .Cc}}{{address .}};{{end}}{{addresses .Cc}}`,
	`{{range $r := .Rules}}{{$r}}{{end}}{{range $i, $r = .Rules}}{{end}}`,
	`{{dateTime .Received}} {{longDate .IMACDate}} {{sameMonth .IMACDate .Received}}`,
	`{{.Received | dateTime}} {{.Subject | oneLine | ltr}}`,
	`{{.Missing}}`,
	`{{.IMACQuota}} {{.Billable}} {{.Received}} {{.Category}} {{.Loc}}`,
	`{{eq .IMACQuota 10}} {{eq .IMACQuota 10 11}} {{ne .Subject ""}} {{eq .Billable true}}`,
	`{{eq .Received .Received}} {{eq .Subject 1}} {{not .Received}}`,
	`{{$}}`,
	`{{.Location}} {{.Base.ServiceName}} {{.TicketInfo.TicketID}}`,
	`{{(.Subject)}} {{("x")}} {{3}} {{-3}} {{1.5}} {{true}}`,
	`{{with .Rules}}{{index . 0}}{{end}}`,
	`{{lang}} {{re .Subject}} {{time .Received}} {{status "open"}}`,
	`{{if .IMACDate.IsZero}}z{{else if .Deferred}}d{{else}}s{{end}}`,
	`{{template "x"}}{{define "x"}}y{{end}}`,
	`{{range 3}}{{.}}{{end}}{{break}}`,
	`{{.Subject.Foo}} {{.TicketID 1}} {{bidi}} {{bidi 1}}`,
	`{{range .Items}}{{.Name}} {{.Hello}} {{.X}}|{{end}}`,
	`{{range $i, $x := .Items}}{{$i}}{{with $x}}{{.}}{{end}}{{end}} {{.S}} {{.V}} {{not .V}} {{.M.k}} {{.M.n}}`,
	`{{eq .IMACQuota 10 .Nope}} {{eq .Subject "x" (category .Subject)}} {{and .V .S}}`,
}

// FuzzCompiledTemplate runs arbitrary templates over sample data on both
// renderers.
func FuzzCompiledTemplate(f *testing.F) {
	for _, s := range compiledSeeds {
		f.Add(s, "Server down <b>&'\"+</b>", int64(4))
	}
	f.Add(`{{.CustomerName}}`, "", int64(0))
	ack := SampleData(KindAck).(AckData)
	fwd := samples(KindForward)[1].data.(ForwardData)
	f.Fuzz(func(t *testing.T, src, text string, n int64) {
		a := ack
		a.Subject, a.CustomerName, a.IMACQuota = text, text, int(n)
		w := fwd
		w.Subject, w.Rules = text, []string{text, "x"}
		if n%2 == 0 {
			w.Cc = append(w.Cc, domain.Address{Name: text, Addr: "a@b.example"})
		}
		odd := struct {
			Items []any
			S     fmt.Stringer
			V     reflect.Value
			M     map[string]any
		}{[]any{reviewA{Name: text, X: int(n)}, &reviewB{Name: "b", X: 2}, text, nil}, a.Loc, reflect.ValueOf(n), map[string]any{"k": text, "n": n}}
		for _, view := range []any{templateView(a), a, &a, templateView(w), w, odd} {
			compiledVsText(t, src, view)
			compiledVsHTML(t, src, view, false)
		}
	})
}

// FuzzCompiledEscapers checks the escapers against html/template in every
// context they serve, for plain strings and typed HTML.
func FuzzCompiledEscapers(f *testing.F) {
	for _, s := range []string{"", "plain", `<a href="x">&amp;'"+ </a>`, "\x00\xff\xfe", "javascript:alert(1)",
		"mailto:a@b.example?subject=x y", "http://ex.example/a b%20c%zz", "עברית <b>", "data:x", "/rel/path:x"} {
		f.Add(s)
	}
	src := `<title>{{.S}} {{.H}}</title><p title="{{.S}}">{{.S}}|{{.H}}|{{.N}}</p>` +
		`<a href="{{.S}}">x</a><a href="mailto:{{.S}}">y</a><a href="/q?x={{.S}}&y={{.N}}">z</a>` +
		`<a href="{{.U}}">u</a><textarea>{{.S}}</textarea>`
	f.Fuzz(func(t *testing.T, s string) {
		view := struct {
			S string
			H htmltemplate.HTML
			U htmltemplate.URL
			N *int
		}{s, htmltemplate.HTML(s), htmltemplate.URL(s), new(len(s))}
		compiledVsHTML(t, src, view, true)
		compiledVsHTML(t, `<p title="{{.H}}">{{.S}}</p>`, view, false)
	})
}

type reviewA struct {
	Name string
	X    int
}

func (reviewA) Hello() string { return "A.Hello" }

type reviewB struct {
	X    int
	Name string
}

func (reviewB) Aaa() string   { return "B.Aaa" }
func (reviewB) Hello() string { return "B.Hello" }

// TestCompiledReviewFindings: cases a review found where the compiled
// renderer succeeded with other output than text/template's, or where
// text/template fails.
func TestCompiledReviewFindings(t *testing.T) {
	items := struct{ Items []any }{[]any{reviewA{Name: "a", X: 1}, reviewB{X: 2, Name: "b"}, &reviewA{Name: "c"}}}
	for _, tc := range []struct {
		src  string
		data any
	}{
		// The field and method caches were keyed on the type before
		// indirection: an interface's values of different types shared
		// one entry.
		{`{{range .Items}}{{.Name}} {{.Hello}} {{.X}}|{{end}}`, items},
		// eq evaluates every argument before comparing.
		{`{{eq .A "x" .Nope}}`, struct{ A string }{"x"}},
		{`{{eq .a "x" .b}}`, map[string]string{"a": "x"}},
		{`{{eq .A "x" (category .A)}}`, struct{ A string }{"x"}},
		// A reflect.Value in the data is unwrapped for the builtins.
		{`{{not .V}} {{and .V "x"}} {{or .V "y"}}`, struct{ V reflect.Value }{reflect.ValueOf(0)}},
		{`{{not .V}} {{if .V}}t{{end}}`, struct{ V fmt.Stringer }{}},
	} {
		compiledVsText(t, tc.src, tc.data)
		compiledVsHTML(t, tc.src, tc.data, false)
	}
	// The same template rendered on values of alternating types.
	f := formatter{lang: LangEnglish, loc: time.UTC}
	tt := texttemplate.Must(texttemplate.New("t").Option("missingkey=error").Funcs(f.textFuncs()).Parse(`{{.Item.Name}}`))
	p, err := compileTree(tt.Tree, f.textFuncs(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range []any{reviewA{Name: "a", X: 1}, reviewB{Name: "b", X: 2}, reviewA{Name: "c", X: 3}} {
		var got strings.Builder
		if err := p.execute(&got, struct{ Item any }{item}); err != nil {
			t.Fatal(err)
		}
		want := ""
		switch it := item.(type) {
		case reviewA:
			want = it.Name
		case reviewB:
			want = it.Name
		}
		if got.String() != want {
			t.Errorf("rendered %q for %#v, want %q", got.String(), item, want)
		}
	}
}

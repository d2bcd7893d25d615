package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update after checking the change):\n%s", name, firstDiff(want, got))
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return "line " + itoa(i+1) + ":\n  want: " + string(w) + "\n  got:  " + string(g)
		}
	}
	return ""
}

func itoa(n int) string { return string(json.Number(jsonInt(n))) }

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// scenario is one report of the golden tests.
type scenario struct {
	name    string
	spec    func(testing.TB) genSpec
	quarter string
	asOf    func(genSpec) time.Time
	lang    string
}

var scenarios = []scenario{
	{name: "acme-2026-Q3", spec: acmeSpec, quarter: "2026-Q3"},
	{name: "acme-2026-Q4-empty", spec: acmeSpec, quarter: "2026-Q4",
		asOf: func(s genSpec) time.Time { return time.Date(2027, 1, 3, 9, 0, 0, 0, s.contract.Calendar.Loc) }},
	{name: "globex-2026-Q3", spec: globexSpec, quarter: "2026-Q3"},
	{name: "acme-2026-Q3-en", spec: acmeSpec, quarter: "2026-Q3", lang: "en"},
}

func (s scenario) build(t testing.TB) (*QBR, genSpec, []TicketWithEvents) {
	spec := s.spec(t)
	tickets := generate(t, spec)
	q, err := ParseQuarter(s.quarter)
	if err != nil {
		t.Fatal(err)
	}
	asOf := spec.asOf
	if s.asOf != nil {
		asOf = s.asOf(spec)
	}
	r, err := Build(Input{Contract: spec.contract, Quarter: q, Tickets: tickets, AsOf: asOf})
	if err != nil {
		t.Fatal(err)
	}
	return r, spec, tickets
}

func TestGoldenNumbers(t *testing.T) {
	for _, s := range scenarios {
		if s.lang != "" {
			continue // the same numbers as another scenario
		}
		t.Run(s.name, func(t *testing.T) {
			r, _, _ := s.build(t)
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, s.name+".json", append(b, '\n'))
		})
	}
}

func TestGoldenHTML(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			r, _, _ := s.build(t)
			var b bytes.Buffer
			if err := RenderHTML(&b, r, s.lang); err != nil {
				t.Fatal(err)
			}
			checkSelfContained(t, b.Bytes())
			golden(t, s.name+".html", b.Bytes())
		})
	}
}

func TestGoldenCSV(t *testing.T) {
	r, _, _ := scenarios[0].build(t)
	var b bytes.Buffer
	if err := RenderCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, scenarios[0].name+".csv", b.Bytes())
}

// checkSelfContained fails on anything a printed, offline report must not
// have: scripts and external resources.
func checkSelfContained(t *testing.T, page []byte) {
	t.Helper()
	lower := bytes.ToLower(page)
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "src=", "@import", "url("} {
		if bytes.Contains(lower, []byte(bad)) {
			t.Errorf("report contains %q", bad)
		}
	}
	for _, want := range []string{"@page { size: A4", "page-break-inside: avoid", "<svg"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
}

package demo

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/examples"
	"github.com/northwind-it/ticketgw/report"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// qbrWorld is a World on the test Redis (REDIS_ADDR, default
// 127.0.0.1:6379): skipped without one, unless CI=true.
func qbrWorld(t *testing.T) *World {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := NewWorld(ctx, WorldOptions{RedisURL: "redis://" + addr + "/0"})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", addr, err)
		}
		t.Skipf("redis at %s: %v", addr, err)
	}
	t.Cleanup(w.Close)
	return w
}

// pageText is the text of an HTML page, as a reader sees it.
func pageText(t *testing.T, page []byte) string {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "style" || n.Data == "script") {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if n.Type == html.ElementNode && (n.Data == "li" || n.Data == "p" || n.Data == "tr") {
			b.WriteByte('\n')
		}
	}
	walk(doc)
	return b.String()
}

// TestWriteSampleQBR writes the demo's review from the generated history and
// checks that it tells the story the history was made for.
func TestWriteSampleQBR(t *testing.T) {
	w := qbrWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	dir := t.TempDir()
	start := time.Now()
	path, err := WriteSampleQBR(ctx, w, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("history stored and review written in %v", time.Since(start).Round(time.Millisecond))
	if want := filepath.Join(dir, "qbr-acme-2026-Q3.html"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "qbr-acme-2026-Q3.csv")); err != nil {
		t.Errorf("no CSV beside the page: %v", err)
	}
	text := pageText(t, page)
	// SPEC §8: "faults rose after the mail move on 9 Aug and were back in
	// the normal range from 30 Aug", in the contract's language.
	for _, want := range []string{
		"תקלות היו מעל הטווח הנורמלי במשך 3 שבועות החל מ־9 באוגוסט",
		"אחרי ״\u2068mail moved to Microsoft 365\u2069״ (9 באוגוסט); חזרו לטווח הנורמלי החל מ־30 באוגוסט.",
		"מכסת ה־IMAC נחרגה ב־2 מתוך 3 חודשים",
		"firewall replaced",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the review does not say %q", want)
		}
	}

	// The figures behind it, from the store.
	st := store.New(w.Redis, w.Config.Redis.Prefix)
	c := w.Config.ContractByID(SampleContract)
	tickets, err := report.Load(ctx, st, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	due, _ := service.QBRDue(c.Calendar, SampleQuarter, 8*60)
	r, err := report.Build(report.Input{Contract: c, Quarter: SampleQuarter, Tickets: tickets, AsOf: due})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range r.Findings {
		kinds[f.Kind]++
	}
	if len(r.Episodes) != 1 || r.Episodes[0].Category != "fault" || r.Episodes[0].Start != "2026-08-09" ||
		r.Episodes[0].BackFrom != "2026-08-30" || len(r.Episodes[0].Changes) != 1 {
		t.Errorf("episodes = %+v, want one: faults from 2026-08-09, back from 2026-08-30, after the change", r.Episodes)
	}
	if r.IMAC == nil || r.IMAC.ExceededMonths != 2 {
		t.Errorf("IMAC use = %+v, want the quota exceeded in 2 months", r.IMAC)
	}
	if r.Misfiled.FaultToIMAC < 3 || kinds[report.FindMisfiled] != 1 {
		t.Errorf("misfiled = %+v, findings %v: want IMACs recategorised by staff", r.Misfiled, kinds)
	}
	if kinds[report.FindCompliance] == 0 || kinds[report.FindRiseDriver] == 0 {
		t.Errorf("findings %v: want compliance under target and a rise driven by a rule", kinds)
	}
	if r.Total.Previous == 0 || len(r.Sites) < 3 {
		t.Errorf("previous quarter %d tickets, %d sites", r.Total.Previous, len(r.Sites))
	}

	// Stored as the pipeline stores: a recategorised IMAC has its opened
	// event as a fault and a staff response that made it an IMAC, with an
	// IMAC day reserved from the counters.
	found := false
	for _, tw := range tickets {
		if tw.Ticket.Category != domain.IMAC || tw.Events[0].Data["category"] != string(domain.Fault) {
			continue
		}
		found = true
		if len(tw.Events) < 2 || tw.Events[1].Kind != domain.EventResponse || tw.Events[1].Data["commands"] != "#category imac" {
			t.Errorf("%s: events %+v", tw.Ticket.ID, tw.Events)
		}
		if tw.Ticket.IMACDate == "" || tw.Ticket.FirstResponse.IsZero() || tw.Ticket.Status != domain.StatusResolved {
			t.Errorf("%s: %+v", tw.Ticket.ID, tw.Ticket)
		}
		break
	}
	if !found {
		t.Error("no recategorised IMAC in the history")
	}
	usage, err := st.IMACUsage(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := usage.MonthUsed(2026, time.September); got != 10 {
		t.Errorf("September 2026 IMAC counter %d, want the quota of 10 used", got)
	}

	// Seeding again stores nothing new.
	if n, err := SeedHistory(ctx, st, c); err != nil || n != 0 {
		t.Errorf("second seeding created %d tickets (%v), want 0", n, err)
	}
}

// TestWriteSampleQBRTempDir: without a directory the review goes to a new
// temporary one.
func TestWriteSampleQBRTempDir(t *testing.T) {
	w := qbrWorld(t)
	path, err := WriteSampleQBR(context.Background(), w, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	if !strings.HasPrefix(path, os.TempDir()) || filepath.Base(path) != "qbr-acme-2026-Q3.html" {
		t.Errorf("path %s", path)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() < 10000 {
		t.Errorf("page %s: %v", path, err)
	}
}

// TestPlanHistory: the plan is deterministic and has the intended shape.
func TestPlanHistory(t *testing.T) {
	cfg := mustExampleConfig(t)
	c := cfg.ContractByID(SampleContract)
	a, err := planHistory(c)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := planHistory(c)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans of the same contract differ")
	}
	loc := c.Calendar.Loc
	first, last := a[0].opened.In(loc), a[len(a)-1].opened.In(loc)
	if sla.DateOf(first).Before(sampleFrom) || !sla.DateOf(last).Before(sampleTo) {
		t.Errorf("history from %v to %v, want within %v..%v", first, last, sampleFrom, sampleTo)
	}
	perWeek := map[string]int{}
	changes := 0
	for i, p := range a {
		if i > 0 && p.opened.Before(a[i-1].opened) {
			t.Fatalf("plan not in time order at %d", i)
		}
		if p.cat == domain.Fault {
			d := sla.DateOf(p.opened.In(loc))
			for d.Weekday() != time.Sunday {
				d = d.AddDays(-1)
			}
			perWeek[d.String()]++
		}
		if p.change != "" {
			changes++
		}
		if p.openedCat != p.cat && (p.cat != domain.IMAC || p.openedPrio != domain.High) {
			t.Errorf("ticket %d opened as %s/%s, became %s", i, p.openedCat, p.openedPrio, p.cat)
		}
	}
	for week, n := range perWeek {
		spike := week >= "2026-08-09" && week < "2026-08-30"
		if spike && n < 18 || !spike && (n < 3 || n > 10) {
			t.Errorf("week of %s: %d faults", week, n)
		}
	}
	if changes != 1 {
		t.Errorf("%d staff #change, want 1", changes)
	}
}

// mustExampleConfig loads examples/gateway.yaml as NewWorld does, with no
// environment.
func mustExampleConfig(t *testing.T) *rules.Config {
	t.Helper()
	data, err := fs.ReadFile(examples.FS, "gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.Parse("examples/gateway.yaml", data, rules.LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

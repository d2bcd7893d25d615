package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRealMailStack builds the gateway once and runs each scenario on a
// mail stack of its own (Dovecot, Postfix, a Redis prefix), in parallel.
func TestRealMailStack(t *testing.T) {
	tools := requireTools(t)
	bin := buildGateway(t, tools)
	t.Run("NewTickets", func(t *testing.T) {
		t.Parallel()
		testNewTickets(t, tools, bin)
	})
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", "messages", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func testNewTickets(t *testing.T, tools *toolset, bin string) {
	stack := startMailStack(t, tools, "yossi@acme.co.il", "dana.levi@acme.co.il", "maria.lopez@globex.example", "tom.becker@globex.example")
	g := newGatewaySetup(t, bin, stack)
	gw := g.start(t)
	for _, s := range []struct{ file, from string }{
		{"fault-hebrew-windows-1255.eml", "yossi@acme.co.il"},
		{"request-english.eml", "maria.lopez@globex.example"},
		{"imac-new-employee-sunday.eml", "dana.levi@acme.co.il"},
		{"autoreply-out-of-office.eml", "yossi@acme.co.il"},
	} {
		stack.inject(t, s.from, []string{supportAddr}, readSample(t, s.file))
	}
	start := time.Now()
	processed := stack.awaitMail(t, supportAddr, "Processed", 30*time.Second, "4 processed", func(m []fetched) bool { return len(m) == 4 })
	t.Logf("processed in %v", time.Since(start))
	time.Sleep(3 * time.Second)
	for _, u := range []string{"yossi@acme.co.il", "dana.levi@acme.co.il", "maria.lopez@globex.example", "tom.becker@globex.example", helpdeskAddr} {
		for _, m := range stack.mustFetch(t, u, "INBOX") {
			t.Logf("==== %s\n%s", u, m.Raw)
		}
	}
	for _, m := range processed {
		t.Logf("processed %d %v %q", m.UID, m.InternalDate, m.Subject)
	}
	gw.stop(t, 10*time.Second)
}

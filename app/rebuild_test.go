package app

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/store"
)

// TestRebuildCommand: `gateway rebuild` reads the processed folder of the
// configured mailbox and rebuilds the tickets; a second run is refused
// unless forced, and then changes nothing.
func TestRebuildCommand(t *testing.T) {
	rdb, prefix, url := testRedis(t)
	srv, err := localmail.StartIMAP(demo.SupportAddress, "imap-pw", localmail.IMAPOptions{Folders: []string{"Processed"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	samples, err := demo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if err := srv.Deliver("Processed", s.Raw, s.Received); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(srv.Addr)
	vars := map[string]string{
		"IMAP_HOST": host, "IMAP_PORT": port, "IMAP_TLS": "none", "IMAP_USER": demo.SupportAddress, "IMAP_PASSWORD": "imap-pw",
		"REDIS_URL": url, "REDIS_PREFIX": prefix,
	}

	r := runMain(t, vars, "rebuild", "-c", exampleConfig, "--log-level", "warn")
	if r.code != 0 {
		t.Fatalf("rebuild: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("gateway rebuild printed:\n%s", r.stdout)
	for _, want := range []string{"4 message(s)", "tickets created        3", "automatic 1", "ticket 3", "mail sent              none"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	st := store.New(rdb, prefix)
	for _, id := range []string{"ACME-0001", "ACME-0002", "GLX-0001"} {
		if _, err := st.Ticket(context.Background(), id); err != nil {
			t.Errorf("ticket %s after rebuild: %v", id, err)
		}
	}
	if n, _ := srv.Count("Processed"); n != len(samples) {
		t.Errorf("processed folder has %d messages after the rebuild, want %d", n, len(samples))
	}

	r = runMain(t, vars, "rebuild", "-c", exampleConfig, "--log-level", "warn")
	if r.code != 1 || !strings.Contains(r.stderr, "already holds tickets") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("second rebuild: exit %d\n%s", r.code, r.stderr)
	}
	r = runMain(t, vars, "rebuild", "-c", exampleConfig, "--force", "--log-level", "warn")
	if r.code != 0 || !strings.Contains(r.stdout, "tickets created        0") || !strings.Contains(r.stdout, "duplicate 3") {
		t.Errorf("forced rebuild: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	if r := runMain(t, vars, "rebuild", "-c", exampleConfig, "extra"); r.code != 2 {
		t.Errorf("rebuild with an argument: exit %d, want 2", r.code)
	}
}

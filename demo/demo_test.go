package demo

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDemoRuns runs `gateway demo` as a new user would (Redis from REDIS_ADDR
// or the local default, else the embedded server) and checks that the three
// sample customers got their tickets and acknowledgements with the dates of
// SPEC §7, and that the auto-reply got nothing.
func TestDemoRuns(t *testing.T) {
	url := ""
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		url = "redis://" + a + "/0"
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Run(ctx, &out, Options{RedisURL: url}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"Ticket ACME-0001  contract acme  imac/normal",
		"IMAC scheduled 2026-12-08 (IMAC 1 of 10 this month)",
		"Ticket ACME-0002  contract acme  fault/high",
		"response due   Mon 30 Nov 2026 10:30 IST",
		"resolution due Tue 01 Dec 2026 09:30 IST",
		"טכנאי יחזור אליך עד יום שני, 30 בנובמבר 2026, 10:30",
		"Ticket GLX-0001  contract globex  request/normal",
		"We will respond by Monday 30 November 2026, 13:10",
		"no ticket, no acknowledgement (auto-reply",
		"ACME-0002 is now fault/urgent; first response recorded at 09:50 IST",
		"relayed to yossi@acme.co.il from \"Dana Cohen (Northwind IT Support)\"",
		"טכנאי בדרך אליכם ויגיע תוך שעה",
		"5 message(s) moved to Processed, 0 left in INBOX. SMTP catcher received 7 message(s).",
		"Quarterly review of ACME for 2026-Q3 (from a generated history of three quarters): ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

// TestDemoEmbeddedRedis checks the fallback a new user without Redis gets.
func TestDemoEmbeddedRedis(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Port 1 on loopback never answers Redis.
	if err := Run(ctx, &out, Options{RedisURL: "redis://127.0.0.1:1/0"}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.Contains(got, "embedded Redis-compatible server") || !strings.Contains(got, "SMTP catcher received 7 message(s)") {
		t.Errorf("embedded run output:\n%s", got)
	}
}

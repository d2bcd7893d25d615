package store

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

func sdate(y int, m time.Month, d int) sla.Date { return sla.Date{Year: y, Month: m, Day: d} }

func TestParseTicketID(t *testing.T) {
	tests := []struct {
		id     string
		prefix string
		n      uint64
		ok     bool
	}{
		{"ACME-0042", "ACME", 42, true},
		{"acme-42", "acme", 42, true},
		{"ACME-10000", "ACME", 10000, true},
		{"NW-IT-0007", "NW-IT", 7, true},
		{"T-0001", "T", 1, true},
		{"ACME-0000", "", 0, false},
		{"ACME-", "", 0, false},
		{"-0001", "", 0, false},
		{"ACME0001", "", 0, false},
		{"AC ME-0001", "", 0, false},
		{"ACME-00x1", "", 0, false},
		{"ACME-1234567890123456789", "", 0, false},
		{"_X-1", "", 0, false},
		{"", "", 0, false},
	}
	for _, tc := range tests {
		p, n, ok := ParseTicketID(tc.id)
		if p != tc.prefix || n != tc.n || ok != tc.ok {
			t.Errorf("ParseTicketID(%q) = %q %d %v; want %q %d %v", tc.id, p, n, ok, tc.prefix, tc.n, tc.ok)
		}
	}
}

// FuzzParseTicketID: parsing never panics, and whatever parses formats back
// to an id that parses to the same prefix and number.
func FuzzParseTicketID(f *testing.F) {
	for _, s := range []string{"ACME-0042", "acme-42", "NW-IT-0007", "T-10000", "ACME-", "-1", "A-999999999999999999", "ä-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		p, n, ok := ParseTicketID(id)
		if !ok {
			return
		}
		if !ValidPrefix(p) || n == 0 {
			t.Fatalf("ParseTicketID(%q) accepted %q %d", id, p, n)
		}
		formatted := FormatTicketID(p, n)
		p2, n2, ok := ParseTicketID(formatted)
		if !ok || p2 != p || n2 != n {
			t.Fatalf("round trip %q -> %q -> %q %d %v", id, formatted, p2, n2, ok)
		}
		if len(formatted) < len(p)+5 {
			t.Fatalf("%q not padded to four digits", formatted)
		}
	})
}

// FuzzDecodeEvents: stored event lines never panic the decoder, and events
// encoded the way the store writes them decode to themselves.
func FuzzDecodeEvents(f *testing.F) {
	f.Add("note", "staff\nwith newline", "k", "v\u2028\"")
	f.Add("opened", "", "", "")
	f.Add("{", "}", "\n", "\x00")
	f.Fuzz(func(t *testing.T, kind, actor, k, v string) {
		ev := domain.Event{Kind: domain.EventKind(kind), At: received, Actor: actor, Data: map[string]string{k: v}}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Skip()
		}
		if strings.Contains(string(b), "\n") {
			t.Fatalf("encoded event contains a newline: %s", b)
		}
		raw := string(b) + "\n" + string(b) + "\n"
		got, err := decodeEvents(raw)
		if err != nil || len(got) != 2 {
			t.Fatalf("decode %q: %v %v", raw, got, err)
		}
		_, _ = decodeEvents(kind + "\n" + actor)
	})
}

func TestEscapeTag(t *testing.T) {
	tests := map[string]string{
		"acme":   "acme",
		"a{b}c":  "a%7Bb%7Dc",
		"50%":    "50%25",
		"%7B":    "%257B",
		"":       "",
		"{}{}%%": "%7B%7D%7B%7D%25%25",
	}
	for in, want := range tests {
		if got := escapeTag(in); got != want {
			t.Errorf("escapeTag(%q) = %q, want %q", in, got, want)
		}
	}
}

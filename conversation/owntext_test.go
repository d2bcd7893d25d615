package conversation

import (
	"strings"
	"testing"
)

func TestHasOwnText(t *testing.T) {
	tests := []struct {
		name string
		text string
		want bool
	}{
		{"empty", "", false},
		{"blank lines", "\n\r\n  \n", false},
		{"words", "Fixed: a paper jam.\n", true},
		{"words above a quote", "Done.\n\nOn Tue, 1 Dec 2026 at 09:01, Support <support@example.com> wrote:\n> Broken.\n", true},
		{"only a quote", "> Broken.\n> Yossi\n", false},
		{"attribution and quote", "\nOn Tue, 1 Dec 2026 at 09:01, support@example.com wrote:\n>\n> Broken.\n", false},
		{"wrapped attribution", "On Tue, 1 Dec 2026 at 09:01, Northwind IT Support\n<support@example.com> wrote:\n> Broken.\n", false},
		{"hebrew attribution", "בתאריך יום ג׳, 1 בדצמבר 2026, 09:01, מאת support@example.com:\n> תקלה\n", false},
		{"colon line before a quote is text", "Please check the following:\n> Broken.\n", true},
		{"inline answer below a quote", "> Which printer?\nThe one on floor 2.\n", true},
		{"signature only", "-- \nDana Cohen\nNorthwind IT\n\n> Broken.\n", false},
		{"signature after words", "On it.\n-- \nDana\n", true},
		{"outlook separator", "\r\n-----Original Message-----\r\nFrom: Support\r\nSent: Tuesday\r\nBroken.\r\n", false},
		{"outlook header block", "\nFrom: Northwind IT Support <support@example.com>\nSent: Tuesday, December 1, 2026 09:01\nTo: Dana\nSubject: [ACME-0001] New fault\n\nBroken.\n", false},
		{"outlook hebrew header block", "\nמאת: Northwind IT Support\nנשלח: יום שלישי\nנושא: [ACME-0001]\n\nתקלה\n", false},
		{"words above outlook block", "Done.\n\nFrom: Support\nSent: Tuesday\n\nBroken.\n", true},
		{"bidi marks only", "\u200f\u200e\n> x\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := HasOwnText(tc.text); got != tc.want {
				t.Errorf("HasOwnText(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
}

// FuzzHasOwnText checks that HasOwnText never panics, finds nothing in a
// text of quoted and blank lines only, and always finds a plain first line.
func FuzzHasOwnText(f *testing.F) {
	for _, s := range []string{"", "x", "> a\n", "On x wrote:\n> y", "-- \nsig", "-----Original Message-----\n", "From: a\nSent: b\n", "\r\n>\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = HasOwnText(s)
		var quoted strings.Builder
		for _, l := range strings.Split(s, "\n") {
			quoted.WriteString("> " + l + "\n")
		}
		if HasOwnText(quoted.String()) {
			t.Errorf("own text found in a text of quoted lines: %q", quoted.String())
		}
		if !HasOwnText("Fixed it for you\n" + s) {
			t.Errorf("no own text in %q", "Fixed it for you\n"+s)
		}
	})
}

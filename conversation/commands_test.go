package conversation

import (
	"reflect"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

func TestParseCommands(t *testing.T) {
	date := func(s string) sla.Date {
		d, err := sla.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name     string
		text     string
		cmds     []Command
		body     string
		problems []string // substrings of each problem, in order, with its line: "3:unknown"
	}{
		{
			name: "no commands",
			text: "Hi Dana,\n\nwe rebooted the server.\n",
			body: "Hi Dana,\n\nwe rebooted the server.\n",
		},
		{
			name: "leading blank lines are trimmed",
			text: "\n\n  \nHi Dana,\n",
			body: "Hi Dana,\n",
		},
		{
			name: "resolve",
			text: "#resolve\nHi Dana, fixed.\n",
			cmds: []Command{{Kind: Resolve, Line: 1}},
			body: "Hi Dana, fixed.\n",
		},
		{
			name: "several with blank lines, case-insensitive, trimmed",
			text: "\n  #Resolve  \n\n#PRIORITY High\n\t#category IMAC\n\n\nHi Dana,\n\nfixed.\n",
			cmds: []Command{
				{Kind: Resolve, Line: 2},
				{Kind: SetPriority, Line: 4, Arg: "High", Priority: domain.High},
				{Kind: SetCategory, Line: 5, Arg: "IMAC", Category: domain.IMAC},
			},
			body: "Hi Dana,\n\nfixed.\n",
		},
		{
			name: "CRLF line endings are kept",
			text: "#pending\r\n\r\nHi Dana,\r\nplease send a photo.\r\n",
			cmds: []Command{{Kind: Pending, Line: 1}},
			body: "Hi Dana,\r\nplease send a photo.\r\n",
		},
		{
			name: "bidi marks and NBSP around a command (Hebrew clients)",
			text: "\u200F#close\u00A0\n\u200Fתודה\n",
			cmds: []Command{{Kind: Close, Line: 1}},
			body: "\u200Fתודה\n",
		},
		{
			name: "all statuses one at a time: open",
			text: "#open",
			cmds: []Command{{Kind: Open, Line: 1}},
			body: "",
		},
		{
			name: "only commands",
			text: "#schedule 2026-12-08\n#category imac\n\n",
			cmds: []Command{
				{Kind: Schedule, Line: 1, Arg: "2026-12-08", Date: date("2026-12-08")},
				{Kind: SetCategory, Line: 2, Arg: "imac", Category: domain.IMAC},
			},
			body: "",
		},
		{
			name: "change keeps its text",
			text: "#change mail moved to Microsoft 365\nThanks.",
			cmds: []Command{{Kind: Change, Line: 1, Arg: "mail moved to Microsoft 365"}},
			body: "Thanks.",
		},
		{
			name: "note without inline text: the body is the note",
			text: "#note\nCalled Dana, she will reboot tonight.\n",
			cmds: []Command{{Kind: Note, Line: 1}},
			body: "Called Dana, she will reboot tonight.\n",
		},
		{
			name: "note with inline text starts the body",
			text: "#pending\n#note waiting for the vendor\n\nTicket opened with Dell.\n",
			cmds: []Command{{Kind: Pending, Line: 1}, {Kind: Note, Line: 2, Arg: "waiting for the vendor"}},
			body: "waiting for the vendor\nTicket opened with Dell.\n",
		},
		{
			name: "note inline only, CRLF",
			text: "#note called the customer\r\n",
			cmds: []Command{{Kind: Note, Line: 1, Arg: "called the customer"}},
			body: "called the customer",
		},
		{
			name: "for with a name",
			text: "#for Dana Levi <dana@ACME.co.il>\n#priority urgent\nDana called: the server is down.\n",
			cmds: []Command{
				{Kind: For, Line: 1, Arg: "Dana Levi <dana@ACME.co.il>", Addr: domain.Address{Name: "Dana Levi", Addr: "dana@acme.co.il"}},
				{Kind: SetPriority, Line: 2, Arg: "urgent", Priority: domain.Urgent},
			},
			body: "Dana called: the server is down.\n",
		},
		{
			name: "for bare address",
			text: "#for dana@acme.co.il",
			cmds: []Command{{Kind: For, Line: 1, Arg: "dana@acme.co.il", Addr: domain.Address{Addr: "dana@acme.co.il"}}},
		},
		{
			name: "hashtags after text are not commands",
			text: "Hi Dana,\n#resolve\n#1 priority is the server.\n",
			body: "Hi Dana,\n#resolve\n#1 priority is the server.\n",
		},
		{
			name: "a hash not followed by a letter ends the block",
			text: "#resolve\n#1 priority is the server.\n#close\n",
			cmds: []Command{{Kind: Resolve, Line: 1}},
			body: "#1 priority is the server.\n#close\n",
		},
		{
			name: "markdown heading is text",
			text: "# Report\n#resolve\n",
			body: "# Report\n#resolve\n",
		},
		{
			name: "quoted command is text",
			text: "> #resolve\nok\n",
			body: "> #resolve\nok\n",
		},
		{
			name:     "unknown command with a suggestion",
			text:     "#reslove\nHi\n",
			body:     "Hi\n",
			problems: []string{`1:unknown command "#reslove" (did you mean #resolve?)`},
		},
		{
			name:     "unknown command without a suggestion",
			text:     "#urgent please help\nHi\n",
			body:     "Hi\n",
			problems: []string{`1:unknown command "#urgent"; the commands are #resolve, #close`},
		},
		{
			name:     "unknown Hebrew word",
			text:     "#סגור\nשלום\n",
			body:     "שלום\n",
			problems: []string{`1:unknown command "#סגור"`},
		},
		{
			name:     "status with an argument",
			text:     "#resolve thanks Dana\nHi\n",
			body:     "Hi\n",
			problems: []string{"1:#resolve takes no argument"},
		},
		{
			name:     "bad category and priority",
			text:     "#category bug\n#priority critical\n#category\n",
			problems: []string{`1:#category needs one of fault, request, imac (got "bug")`, `2:#priority needs one of urgent, high, normal, low (got "critical")`, `3:#category needs one of`},
		},
		{
			name: "bad dates",
			text: "#schedule 2026-02-30\n#schedule 8.12.2026\n#schedule\n#schedule 2026-12-08 10:00\n",
			problems: []string{
				"1:#schedule: parse date \"2026-02-30\": February 2026 has no day 30",
				"2:#schedule: parse date \"8.12.2026\": want YYYY-MM-DD",
				"3:#schedule needs the IMAC date",
				"4:#schedule: parse date",
			},
		},
		{
			name:     "empty change",
			text:     "#change   \nHi",
			body:     "Hi",
			problems: []string{"1:#change needs a description"},
		},
		{
			name:     "bad for",
			text:     "#for\n#for not an address\n#for a@x.example, b@y.example\n",
			problems: []string{"1:#for needs the customer's address", "2:#for needs one valid address", "3:#for needs one valid address"},
		},
		{
			name: "conflicting statuses",
			text: "#resolve\n#open\n",
			cmds: []Command{{Kind: Resolve, Line: 1}, {Kind: Open, Line: 2}},
			problems: []string{
				"2:#open conflicts with #resolve on line 1",
			},
		},
		{
			name: "repeated identical commands are fine",
			text: "#close\n#close\n#priority high\n#priority HIGH\n",
			cmds: []Command{
				{Kind: Close, Line: 1}, {Kind: Close, Line: 2},
				{Kind: SetPriority, Line: 3, Arg: "high", Priority: domain.High},
				{Kind: SetPriority, Line: 4, Arg: "HIGH", Priority: domain.High},
			},
		},
		{
			name: "conflicting values",
			text: "#priority high\n#priority low\n#category fault\n#category request\n#for a@x.example\n#for b@x.example\n",
			cmds: []Command{
				{Kind: SetPriority, Line: 1, Arg: "high", Priority: domain.High},
				{Kind: SetPriority, Line: 2, Arg: "low", Priority: domain.Low},
				{Kind: SetCategory, Line: 3, Arg: "fault", Category: domain.Fault},
				{Kind: SetCategory, Line: 4, Arg: "request", Category: domain.Request},
				{Kind: For, Line: 5, Arg: "a@x.example", Addr: domain.Address{Addr: "a@x.example"}},
				{Kind: For, Line: 6, Arg: "b@x.example", Addr: domain.Address{Addr: "b@x.example"}},
			},
			problems: []string{
				"2:#priority low conflicts with #priority high on line 1",
				"4:#category request conflicts with #category fault on line 3",
				"6:#for b@x.example conflicts with #for a@x.example on line 5",
			},
		},
		{
			name: "schedule needs an IMAC",
			text: "#category fault\n#schedule 2026-12-08\n",
			cmds: []Command{
				{Kind: SetCategory, Line: 1, Arg: "fault", Category: domain.Fault},
				{Kind: Schedule, Line: 2, Arg: "2026-12-08", Date: date("2026-12-08")},
			},
			problems: []string{"2:#schedule 2026-12-08 sets an IMAC date but #category fault on line 1 makes the ticket a fault"},
		},
		{
			name: "problem lines stay in the block",
			text: "#resolve\n#bogus\n#pending\nHi\n",
			cmds: []Command{{Kind: Resolve, Line: 1}, {Kind: Pending, Line: 3}},
			body: "Hi\n",
			problems: []string{
				`2:unknown command "#bogus"`,
				"3:#pending conflicts with #resolve on line 1",
			},
		},
		{
			name: "long junk is capped",
			text: "#" + strings.Repeat("x", 500),
			problems: []string{
				"1:unknown command \"#" + strings.Repeat("x", 199) + "...\"",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmds, body, problems := ParseCommands(tc.text)
			if !reflect.DeepEqual(cmds, tc.cmds) {
				t.Errorf("cmds = %+v\nwant   %+v", cmds, tc.cmds)
			}
			if body != tc.body {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
			if len(problems) != len(tc.problems) {
				t.Fatalf("problems = %v, want %d: %q", problems, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				line, sub, _ := strings.Cut(want, ":")
				got := problems[i]
				if got.String()[len("line "):len("line ")+len(line)] != line || !strings.Contains(got.Problem, sub) {
					t.Errorf("problem %d = %q, want line %s containing %q", i, got, line, sub)
				}
				if got.Text == "" || len(got.Text) > maxProblemText+3 {
					t.Errorf("problem %d text %q", i, got.Text)
				}
			}
		})
	}
}

func TestContextProblems(t *testing.T) {
	cmds := func(text string) []Command {
		c, _, p := ParseCommands(text)
		if len(p) > 0 {
			t.Fatal(p)
		}
		return c
	}
	tests := []struct {
		text     string
		onTicket bool
		want     []string
	}{
		{"#resolve", true, nil},
		{"#for dana@acme.example\n#resolve", false, nil},
		{"#for dana@acme.example", true, []string{"#for opens a new ticket"}},
		{"#resolve", false, []string{"belongs to no ticket"}},
		{"", false, nil},
		{"hello", true, nil},
	}
	for _, tc := range tests {
		got := ContextProblems(cmds(tc.text), tc.onTicket)
		if len(got) != len(tc.want) {
			t.Errorf("ContextProblems(%q, %v) = %v, want %q", tc.text, tc.onTicket, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.Contains(got[i].Problem, tc.want[i]) || got[i].Line != 1 {
				t.Errorf("ContextProblems(%q, %v)[%d] = %v, want %q", tc.text, tc.onTicket, i, got[i], tc.want[i])
			}
		}
	}
}

func TestHasNote(t *testing.T) {
	c, _, _ := ParseCommands("#pending\n#note\nx")
	if !HasNote(c) {
		t.Error("HasNote = false with #note")
	}
	c, _, _ = ParseCommands("#pending\nx\n#note")
	if HasNote(c) {
		t.Error("HasNote = true without a #note in the block")
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"resolve", "resolve", 0}, {"reslove", "resolve", 2}, {"clos", "close", 1}, {"", "abc", 3}, {"שלום", "שלם", 1}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func FuzzParseCommands(f *testing.F) {
	for _, s := range []string{
		"#resolve\nHi", "\n\n#priority high\r\n#category imac\r\n\r\nbody", "#note x\n#note y\n\nz",
		"#for Dana <dana@acme.example>\n#schedule 2026-12-08", "#schedule 2026-02-30", "#\n#1\n# x",
		"\u200F#close\u00A0\n", "#resolve\n#open", "#reslove", "#for \"a b\"@x", "\xff#\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmds, body, problems := ParseCommands(text)
		notes := 0
		for _, c := range cmds {
			if c.Line < 1 || c.Line > strings.Count(text, "\n")+1 {
				t.Fatalf("command %+v: line out of range", c)
			}
			switch c.Kind {
			case SetCategory:
				if !c.Category.Valid() {
					t.Fatalf("invalid category accepted: %+v", c)
				}
			case SetPriority:
				if !c.Priority.Valid() {
					t.Fatalf("invalid priority accepted: %+v", c)
				}
			case Schedule:
				if _, err := sla.ParseDate(c.Date.String()); err != nil {
					t.Fatalf("invalid date accepted: %+v", c)
				}
			case For:
				if !strings.Contains(c.Addr.Addr, "@") {
					t.Fatalf("invalid address accepted: %+v", c)
				}
			case Change:
				if c.Arg == "" {
					t.Fatalf("empty change accepted")
				}
			case Note:
				if c.Arg != "" {
					notes++
				}
			case Resolve, Close, Pending, Open:
			default:
				t.Fatalf("unknown kind %q accepted", c.Kind)
			}
		}
		for _, p := range problems {
			if p.Line < 1 || p.Problem == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
		// Without inline notes, the body is a suffix of the text.
		if notes == 0 && !strings.HasSuffix(text, body) {
			t.Fatalf("body %q is not a suffix of %q", body, text)
		}
		// The body starts with no command line: parsing it again finds the
		// same body (unless a #note's inline text looks like a command).
		if notes == 0 {
			if c2, b2, p2 := ParseCommands(body); len(c2) != 0 || len(p2) != 0 || b2 != body {
				t.Fatalf("body %q parses again to %+v %q %+v", body, c2, b2, p2)
			}
		}
	})
}

package conversation

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFindTags(t *testing.T) {
	type tg struct {
		id   string
		text string
	}
	tests := []struct {
		subject string
		want    []tg
	}{
		{"[ACME-0042] Server down", []tg{{"ACME-0042", "[ACME-0042]"}}},
		{"Re: [acme-42] Server down", []tg{{"ACME-0042", "[acme-42]"}}},
		{"Server down [Acme-00042]", []tg{{"ACME-0042", "[Acme-00042]"}}},
		{"[T-7]", []tg{{"T-0007", "[T-7]"}}},
		{"[ACME-12345] big numbers", []tg{{"ACME-12345", "[ACME-12345]"}}},
		{"[ACME-999999999999999999] 18 digits", []tg{{"ACME-999999999999999999", "[ACME-999999999999999999]"}}},
		{"[ACME-1234567890123456789] 19 digits", nil},
		{"[ABCDEFGHIJKLMNOP-1] 16 letters", []tg{{"ABCDEFGHIJKLMNOP-0001", "[ABCDEFGHIJKLMNOP-1]"}}},
		{"[ABCDEFGHIJKLMNOPQ-1] 17 letters", nil},
		{"[2024-01] digits as prefix", []tg{{"2024-0001", "[2024-01]"}}},
		{"two: [ACME-1] and [BETA-0002]", []tg{{"ACME-0001", "[ACME-1]"}, {"BETA-0002", "[BETA-0002]"}}},
		{"nested [[ACME-3]]", []tg{{"ACME-0003", "[ACME-3]"}}},
		{"\u200F\u200E[ACME-0042]\u200E תקלה חדשה", []tg{{"ACME-0042", "[ACME-0042]"}}},
		{"[ACME-0] zero is no ticket", nil},
		{"[ACME-0000]", nil},
		{"[ACME 0042] space", nil},
		{"[ACME_0042] underscore", nil},
		{"[ACME-42a]", nil},
		{"[ACME-]", nil},
		{"[-42]", nil},
		{"ACME-0042 without brackets", nil},
		{"[ACME-0042", nil},
		{"[ÄCME-0042] non-ASCII prefix", nil},
		{"Re[2]: counters are not tags", nil},
		{"", nil},
	}
	for _, tc := range tests {
		got := FindTags(tc.subject)
		var g []tg
		for _, x := range got {
			g = append(g, tg{x.ID, tc.subject[x.Start:x.End]})
			if x.Prefix+"-" != x.ID[:len(x.Prefix)+1] {
				t.Errorf("FindTags(%q): prefix %q does not start id %q", tc.subject, x.Prefix, x.ID)
			}
		}
		if !reflect.DeepEqual(g, tc.want) {
			t.Errorf("FindTags(%q) = %v, want %v", tc.subject, g, tc.want)
		}
	}
}

func TestFindTagsNumber(t *testing.T) {
	got := FindTags("Re: [acme-0042]")
	want := []Tag{{Prefix: "ACME", Number: 42, ID: "ACME-0042", Start: 4, End: 15}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestStripReplyPrefixes(t *testing.T) {
	tests := []struct {
		subject  string
		prefixes []string
		rest     string
	}{
		{"Server down", nil, "Server down"},
		{"Re: Server down", []string{"Re:"}, "Server down"},
		{"RE: RE: FW: Server down", []string{"RE:", "RE:", "FW:"}, "Server down"},
		{"re:fwd:Server down", []string{"re:", "fwd:"}, "Server down"},
		{"Fwd: Fw: FWD: x", []string{"Fwd:", "Fw:", "FWD:"}, "x"},
		{"AW: WG: Drucker", []string{"AW:", "WG:"}, "Drucker"},
		{"Antwort: x", []string{"Antwort:"}, "x"},
		{"SV: VS: x", []string{"SV:", "VS:"}, "x"},
		{"Vs: x", []string{"Vs:"}, "x"},
		{"TR: RE : x", []string{"TR:", "RE :"}, "x"},
		{"R: RIF: x", []string{"R:", "RIF:"}, "x"},
		{"Antw: Doorst: x", []string{"Antw:", "Doorst:"}, "x"},
		{"Odp: PD: x", []string{"Odp:", "PD:"}, "x"},
		{"RES: ENC: RV: x", []string{"RES:", "ENC:", "RV:"}, "x"},
		{"ΑΠ: ΣΧΕΤ: x", []string{"ΑΠ:", "ΣΧΕΤ:"}, "x"},
		{"Απ: x", []string{"Απ:"}, "x"},
		{"回复: 转发: 答复: 打印机", []string{"回复:", "转发:", "答复:"}, "打印机"},
		{"回复：打印机", []string{"回复："}, "打印机"},
		{"Re：x", []string{"Re："}, "x"},
		{"השב: תקלה", []string{"השב:"}, "תקלה"},
		{"תשובה: הועבר: מענה: תקלה", []string{"תשובה:", "הועבר:", "מענה:"}, "תקלה"},
		{"הועבר לנמען: תקלה", []string{"הועבר לנמען:"}, "תקלה"},
		{"Re[2]: x", []string{"Re[2]:"}, "x"},
		{"Re(3): x", []string{"Re(3):"}, "x"},
		{"RE^2: x", []string{"RE^2:"}, "x"},
		{"Re [2]: x", nil, "Re [2]: x"},
		{"Re[]: x", nil, "Re[]: x"},
		{"Re[2: x", nil, "Re[2: x"},
		{"  Re:   x  ", []string{"Re:"}, "x  "},
		{"\u200FRe: x", []string{"Re:"}, "x"},
		{"\u200F\u200Eהשב\u200F: x", []string{"השב:"}, "x"},
		{"Re: \u200F\u200E[ACME-0042]\u200E תקלה", []string{"Re:"}, "\u200F\u200E[ACME-0042]\u200E תקלה"},
		{"השב: \u200F\u200E[ACME-0042]\u200E תקלה", []string{"השב:"}, "\u200F\u200E[ACME-0042]\u200E תקלה"},
		{"\u200F\u200E[ACME-0042]\u200E תקלה", nil, "\u200F\u200E[ACME-0042]\u200E תקלה"},
		{"Re: [ACME-0042] x", []string{"Re:"}, "[ACME-0042] x"},
		{"Re:", []string{"Re:"}, ""},
		{"Re: Re:", []string{"Re:", "Re:"}, ""},
		{"Remark: x", nil, "Remark: x"},
		{"Rev: x", nil, "Rev: x"},
		{"Re x", nil, "Re x"},
		{"Reply: x", nil, "Reply: x"},
		{"Regarding the printer", nil, "Regarding the printer"},
		{"Re2: x", nil, "Re2: x"},
		{"Fwd x: y", nil, "Fwd x: y"},
		{"RE: Note: printer", []string{"RE:"}, "Note: printer"},
		{"", nil, ""},
	}
	for _, tc := range tests {
		p, rest := StripReplyPrefixes(tc.subject)
		if !reflect.DeepEqual(p, tc.prefixes) || rest != tc.rest {
			t.Errorf("StripReplyPrefixes(%q) = %q, %q; want %q, %q", tc.subject, p, rest, tc.prefixes, tc.rest)
		}
	}
}

func TestTagSubject(t *testing.T) {
	const lrm, rlm = "\u200E", "\u200F"
	tests := []struct {
		subject, id, want string
	}{
		{"Server down", "ACME-0042", "[ACME-0042] Server down"},
		{"Re: Server down", "ACME-0042", "Re: [ACME-0042] Server down"},
		{"RE: RE: FW: Server down", "ACME-0042", "RE: RE: FW: [ACME-0042] Server down"},
		{"AW:Drucker", "ACME-0042", "AW: [ACME-0042] Drucker"},
		{"Re[2]: x", "ACME-0042", "Re[2]: [ACME-0042] x"},
		{"", "ACME-0042", "[ACME-0042]"},
		{"Re:", "ACME-0042", "Re: [ACME-0042]"},
		{"  Server down  ", "ACME-0042", "[ACME-0042] Server down  "},
		// Already tagged, anywhere, any case or padding: unchanged.
		{"Re: [ACME-0042] Server down", "ACME-0042", "Re: [ACME-0042] Server down"},
		{"Server down [acme-42]", "ACME-0042", "Server down [acme-42]"},
		{"RE: [ACME-0042] New fault, high: Server down", "ACME-0042", "RE: [ACME-0042] New fault, high: Server down"},
		// Another ticket's tag does not count.
		{"Re: [ACME-0041] Server down", "ACME-0042", "Re: [ACME-0042] [ACME-0041] Server down"},
		// Hebrew: a left-to-right island, and RLM first when the tag leads.
		{"תקלה בשרת", "ACME-0042", rlm + lrm + "[ACME-0042]" + lrm + " תקלה בשרת"},
		{"השב: תקלה בשרת", "ACME-0042", "השב: " + lrm + "[ACME-0042]" + lrm + " תקלה בשרת"},
		{"השב: " + rlm + lrm + "[ACME-0042]" + lrm + " תקלה", "ACME-0042", "השב: " + rlm + lrm + "[ACME-0042]" + lrm + " תקלה"},
		{"", "", ""},
		{"x", "", "x"},
		// An id that is not a tag is still placed, and found again.
		{"x", "weird id", "[weird id] x"},
		{"[weird id] x", "weird id", "[weird id] x"},
	}
	for _, tc := range tests {
		if got := TagSubject(tc.subject, tc.id); got != tc.want {
			t.Errorf("TagSubject(%q, %q) = %q, want %q", tc.subject, tc.id, got, tc.want)
		}
		if got := TagSubject(TagSubject(tc.subject, tc.id), tc.id); got != TagSubject(tc.subject, tc.id) {
			t.Errorf("TagSubject is not idempotent on %q: %q", tc.subject, got)
		}
	}
}

func FuzzFindTags(f *testing.F) {
	for _, s := range []string{
		"Re: [ACME-0042] Server down", "[acme-42]", "[[A-1]]", "[A-1][B-2]", "[ABCDEFGHIJKLMNOPQ-1]",
		"\u200F\u200E[ACME-0042]\u200E תקלה", "[ACME-99999999999999999999]", "[\xff-1]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prevEnd := 0
		for _, tag := range FindTags(s) {
			if tag.Start < prevEnd || tag.End <= tag.Start || tag.End > len(s) {
				t.Fatalf("bad offsets %+v in %q", tag, s)
			}
			prevEnd = tag.End
			raw := s[tag.Start:tag.End]
			if raw[0] != '[' || raw[len(raw)-1] != ']' {
				t.Fatalf("tag %q is not bracketed", raw)
			}
			if tag.Number <= 0 || tag.ID != formatID(tag.Prefix, tag.Number) || tag.Prefix != strings.ToUpper(tag.Prefix) {
				t.Fatalf("inconsistent tag %+v", tag)
			}
			// The canonical form is found again.
			again := FindTags("[" + tag.ID + "]")
			if len(again) != 1 || again[0].ID != tag.ID {
				t.Fatalf("canonical %q not found again: %+v", tag.ID, again)
			}
		}
		// Tagging any subject puts the tag in, and once.
		tagged := TagSubject(s, "ACME-0042")
		n := 0
		for _, tag := range FindTags(tagged) {
			if tag.ID == "ACME-0042" {
				n++
			}
		}
		before := 0
		for _, tag := range FindTags(s) {
			if tag.ID == "ACME-0042" {
				before++
			}
		}
		if n == 0 || (before == 0 && n != 1) || (before > 0 && tagged != s) {
			t.Fatalf("TagSubject(%q) = %q: %d tags (before %d)", s, tagged, n, before)
		}
	})
}

func FuzzStripReplyPrefixes(f *testing.F) {
	for _, s := range []string{
		"Re: x", "RE: RE: FW: x", "Re[2]: x", "回复：x", "\u200FRe: \u200F\u200E[ACME-0042]\u200E x", "הועבר לנמען: x",
		"Re(99999): x", "Re^", "Re[", "\xffRe: x", "İLT: x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prefixes, rest := StripReplyPrefixes(s)
		if !strings.HasSuffix(s, rest) {
			t.Fatalf("rest %q is not a suffix of %q", rest, s)
		}
		for _, p := range prefixes {
			if p == "" || (!strings.HasSuffix(p, ":") && !strings.HasSuffix(p, "：")) {
				t.Fatalf("prefix %q of %q does not end with a colon", p, s)
			}
		}
		// Stripping is idempotent on the rest.
		if p2, rest2 := StripReplyPrefixes(rest); len(p2) != 0 || rest2 != rest {
			if utf8.ValidString(s) {
				t.Fatalf("rest %q still has prefixes %q", rest, p2)
			}
		}
	})
}

package textfold

import "testing"

func TestFold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"New  Employee", "new employee"},
		{"  leading\tand\ntrailing  ", "leading and trailing"},
		{"לֹא עוֹבֵד", "לא עובד"},
		{"שלום", "שלומ"},
		{"עובד חדש", "עובד חדש"},
		{"STRAßE", "strasse"},
		{"Café", "cafe"},
		{"\u200fתקלה\u200e", "תקלה"},
		{"ＦＵＬＬ", "full"},
		{"already folded", "already folded"},
		{"", ""},
		{"bad\xffutf8", "bad\uFFFDutf8"},
	}
	for _, tt := range tests {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("Fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFoldFinalLettersMatch(t *testing.T) {
	// A keyword written with a final letter must match text where the same
	// letter is medial, and the other way round.
	if Fold("ספקים") != Fold("ספקימ") {
		t.Fatal("final mem not folded")
	}
}

func FuzzFold(f *testing.F) {
	for _, s := range []string{"לֹא עוֹבֵד", "New Employee", "\xff\xfe", "ﬁ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Fold(s)
		if Fold(out) != out {
			t.Fatalf("Fold not idempotent: %q -> %q -> %q", s, out, Fold(out))
		}
	})
}

package classify

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/textfold"
)

type occurrence struct{ id, end int }

// naiveOccurrences lists every occurrence of every keyword in s, by
// strings.Index.
func naiveOccurrences(keywords []string, s string) []occurrence {
	var out []occurrence
	for id, k := range keywords {
		for i := 0; i+len(k) <= len(s); i++ {
			if s[i:i+len(k)] == k {
				out = append(out, occurrence{id, i + len(k)})
			}
		}
	}
	return out
}

func sortedUnique(o []occurrence) []occurrence {
	slices.SortFunc(o, func(a, b occurrence) int {
		if a.end != b.end {
			return a.end - b.end
		}
		return a.id - b.id
	})
	return slices.Compact(o)
}

// TestMatcherOccurrences compares the matcher with a naive search, on texts
// long enough to be scanned in four stretches and short ones, whole and cut
// in two pieces scanned one after the other.
func TestMatcherOccurrences(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	letters := "abcab  cא"
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(letters[rng.IntN(len(letters))])
		}
		return b.String()
	}
	for round := range 300 {
		var keywords []string
		for range 1 + rng.IntN(12) {
			keywords = append(keywords, word(1+rng.IntN(1+round%20)))
		}
		m := buildMatcher(keywords)
		text := word(rng.IntN(3000))
		want := sortedUnique(naiveOccurrences(keywords, text))

		var got []occurrence
		m.scanReport(0, text, 0, func(id int32, end int) { got = append(got, occurrence{int(id), end}) })
		if got = sortedUnique(got); !slices.Equal(got, want) {
			t.Fatalf("keywords %q, text of %d bytes: got %v, want %v", keywords, len(text), got, want)
		}

		cut := rng.IntN(len(text) + 1)
		got = got[:0]
		found := func(id int32, end int) { got = append(got, occurrence{int(id), end}) }
		row := m.scanReport(0, text[:cut], 0, found)
		m.scanReport(row, text[cut:], cut, found)
		if got = sortedUnique(got); !slices.Equal(got, want) {
			t.Fatalf("keywords %q, text cut at %d of %d: got %v, want %v", keywords, cut, len(text), got, want)
		}

		hits := make([]bool, len(keywords))
		m.scanFrom(0, text, hits)
		for id, k := range keywords {
			if hits[id] != strings.Contains(text, k) {
				t.Fatalf("scanFrom: keyword %q hit %v in %q", k, hits[id], text)
			}
		}
	}
}

// TestScanTextFields checks the one scan of subject, body and text against
// strings.Contains on each field's folded value.
func TestScanTextFields(t *testing.T) {
	c := New(benchConfig(t, 200))
	fs := c.fs
	rng := rand.New(rand.NewPCG(7, 8))
	pieces := []string{"keyword1a", "מילה5", "phrase number 9", "printer", "x3", "x7", "system2", "System6 ", " ", "ab", "\n", "Keyword", "מילה", "number 1"}
	for range 500 {
		var subj, body strings.Builder
		for range rng.IntN(6) {
			subj.WriteString(pieces[rng.IntN(len(pieces))])
		}
		for range rng.IntN(400) {
			body.WriteString(pieces[rng.IntN(len(pieces))])
		}
		m := &domain.Message{Subject: subj.String(), Text: body.String()}
		fsub, fbody := textfold.Fold(m.Subject), textfold.Fold(m.Text)
		values := map[int]string{fs.subject: fsub, fs.body: fbody, fs.text: fsub + " " + fbody}
		// Ask for the fields in both orders: the subject may be scanned on
		// its own first, or as part of the text.
		for _, order := range [][]int{{fs.subject, fs.body, fs.text}, {fs.text, fs.subject, fs.body}} {
			f := newFields(fs)
			f.m = m
			for _, slot := range order {
				hits := f.hits(slot)
				for id, k := range fs.slots[slot].list {
					if hits[id] != strings.Contains(values[slot], k) {
						t.Fatalf("field %s, keyword %q: hit %v; subject %q, body %q", fs.slots[slot].field, k, hits[id], m.Subject, m.Text)
					}
				}
			}
		}
	}
}

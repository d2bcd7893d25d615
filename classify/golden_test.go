package classify

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/trace.golden.json")

// goldenMessages exercise every field of testdata/trace.yaml with ASCII,
// Hebrew (with niqqud and final letters), fullwidth and accented text.
func goldenMessages() []*domain.Message {
	bench := benchMessage()
	return []*domain.Message{
		bench,
		{
			From:    domain.Address{Name: "יוֹסִי כהן", Addr: "Boss@Gmail.com"},
			To:      []domain.Address{{Name: "Helpdesk", Addr: "support@msp.example"}, {Addr: "other@msp.example"}},
			Cc:      []domain.Address{{Name: "המנהל", Addr: "ceo@acme.co.il"}, {Addr: "CEO@ACME.CO.IL"}},
			Subject: "  HELP  ",
			Text:    "The file server is down.\nError code: 42\nהמחשב לֹא עוֹבֵד, צריך דיו",
			Headers: []domain.HeaderField{
				{Name: "X-Spam-Flag", Value: "YES"},
				{Name: "X-Priority", Value: "1 (Highest)"},
				{Name: "X-Mailer", Value: "Microsoft Outlook 16.0"},
			},
			Attachments: []domain.Attachment{{Name: "Q3-Invoice.XLSX"}, {Name: "photo.jpg"}},
		},
		{
			From:    domain.Address{Addr: "it@globex.example"},
			To:      []domain.Address{{Addr: "Support@msp.example"}},
			Subject: "Server 12   DOWN",
			Text:    "STRASSE ﬁle server needs toner",
		},
		{
			From:    domain.Address{Addr: "dana@acme.co.il"},
			Subject: "ＵＲＧＥＮＴ!",
			Text:    "",
		},
		{
			From:    domain.Address{Addr: "dana@acme.co.il"},
			Subject: "שרת  נפל",
			Text:    "Printer on the 2nd floor",
		},
		{
			From:    domain.Address{Addr: "x@unknown.example"},
			Subject: "hi",
			Text:    "there",
		},
		{
			From:    domain.Address{Addr: "x@unknown.example"},
			Subject: "",
			Text:    "hi there",
		},
		{
			From:    domain.Address{Addr: "a@acme.co.il"},
			Subject: "Re: the floor",
			Text:    "Hello, the scanner is stuck; it does not print. " + strings.Repeat("pad ", 40) + "not working",
		},
		{Subject: "דחוף", Text: "אין מדפסת"},
	}
}

// TestTraceGolden compares whole classifications, trace wording included,
// with the ones recorded in testdata/trace.golden.json (go test -update
// rewrites it).
func TestTraceGolden(t *testing.T) {
	cfg, err := rules.Load("testdata/trace.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := New(cfg)
	var got []domain.Classification
	for _, m := range goldenMessages() {
		got = append(got, c.Classify(m))
	}
	// The classifier reuses per-message state: classify again, in reverse
	// order, and expect the same.
	msgs := goldenMessages()
	for i := len(msgs) - 1; i >= 0; i-- {
		again, _ := json.Marshal(c.Classify(msgs[i]))
		first, _ := json.Marshal(got[i])
		if !bytes.Equal(again, first) {
			t.Errorf("message %d classified twice:\n%s\n%s", i, first, again)
		}
	}
	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	const golden = "testdata/trace.golden.json"
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		gl, wl := strings.Split(string(out), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("classifications differ from %s at line %d:\ngot:  %s\nwant: %s", golden, i+1, g, w)
			}
		}
	}
}

// TestTraceGoldenBench does the same for the benchmark configurations, one
// classification per line.
func TestTraceGoldenBench(t *testing.T) {
	var out []byte
	msgs := goldenMessages()
	for _, n := range []int{10, 200} {
		c := New(benchConfig(t, n))
		for _, m := range []*domain.Message{msgs[0], msgs[1], msgs[4]} {
			line, err := json.Marshal(c.Classify(m))
			if err != nil {
				t.Fatal(err)
			}
			out = append(append(out, line...), '\n')
		}
	}
	const golden = "testdata/bench.golden.json"
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	gl, wl := strings.Split(string(out), "\n"), strings.Split(string(want), "\n")
	if len(gl) != len(wl) {
		t.Fatalf("%d classifications, %s has %d", len(gl)-1, golden, len(wl)-1)
	}
	for i := range gl {
		if gl[i] != wl[i] {
			t.Errorf("classification %d differs from %s:\ngot:  %s\nwant: %s", i+1, golden, gl[i], wl[i])
		}
	}
}

// TestClassifyConcurrent classifies the golden messages from several
// goroutines at once (the per-message buffers are pooled) and expects the
// results of one goroutine alone.
func TestClassifyConcurrent(t *testing.T) {
	cfg, err := rules.Load("testdata/trace.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := New(cfg)
	msgs := goldenMessages()
	want := make([][]byte, len(msgs))
	for i, m := range msgs {
		want[i], _ = json.Marshal(c.Classify(m))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				i := (g + k) % len(msgs)
				got, _ := json.Marshal(c.Classify(msgs[i]))
				if !bytes.Equal(got, want[i]) {
					errs <- fmt.Sprintf("message %d:\n%s\nwant\n%s", i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

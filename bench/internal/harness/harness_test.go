package harness

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/localmail"
)

func TestParseBenchOutput(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/northwind-it/ticketgw/classify
cpu: Intel(R) Xeon(R) Processor
BenchmarkClassify/rules=10-2         	  318451	      3755 ns/op	     616 B/op	       9 allocs/op
BenchmarkClassify/rules=200-2        	   39320	     30487 ns/op	     616 B/op	       9 allocs/op
PASS
ok  	github.com/northwind-it/ticketgw/classify	3.021s
pkg: github.com/northwind-it/ticketgw/ingest
BenchmarkParseTypical
BenchmarkParseTypical-2   	    9642	    124215 ns/op	 171.93 MB/s	   83218 B/op	     603 allocs/op
BenchmarkNoProcs 	   10	  5 ns/op
`
	got, err := ParseBenchOutput(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		pkg, name string
		procs     int
		it        int64
		metrics   map[string]float64
	}{
		{"github.com/northwind-it/ticketgw/classify", "BenchmarkClassify/rules=10", 2, 318451, map[string]float64{"ns/op": 3755, "B/op": 616, "allocs/op": 9}},
		{"github.com/northwind-it/ticketgw/classify", "BenchmarkClassify/rules=200", 2, 39320, map[string]float64{"ns/op": 30487, "B/op": 616, "allocs/op": 9}},
		{"github.com/northwind-it/ticketgw/ingest", "BenchmarkParseTypical", 2, 9642, map[string]float64{"ns/op": 124215, "MB/s": 171.93, "B/op": 83218, "allocs/op": 603}},
		{"github.com/northwind-it/ticketgw/ingest", "BenchmarkNoProcs", 0, 10, map[string]float64{"ns/op": 5}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Pkg != w.pkg || g.Name != w.name || g.Procs != w.procs || g.Iterations != w.it || len(g.Metrics) != len(w.metrics) {
			t.Errorf("line %d: got %+v, want %+v", i, g, w)
			continue
		}
		for k, v := range w.metrics {
			if g.Metrics[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, g.Metrics[k], v)
			}
		}
	}
}

func TestParseBenchOutputErrors(t *testing.T) {
	for _, in := range []string{
		"BenchmarkX-2 10 5 ns/op 7\n",  // dangling value
		"BenchmarkX-2 10 five ns/op\n", // value not a number
		"BenchmarkX-2 0 5 ns/op\n",     // no iterations
		"BenchmarkX-2 -3 5 ns/op\n",    // negative iterations
		"BenchmarkX-2 10 5 ns/op 1 B/op x\n",
	} {
		if _, err := ParseBenchOutput(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzParseBenchOutput(f *testing.F) {
	f.Add("pkg: p\nBenchmarkA-2 10 5 ns/op 3 B/op 1 allocs/op\n")
	f.Add("BenchmarkB 1 1e3 ns/op 2.5 MB/s\nPASS\n")
	f.Add("Benchmark\nBenchmarkC-x 4 1 ns/op\n")
	f.Fuzz(func(t *testing.T, in string) {
		lines, err := ParseBenchOutput(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, l := range lines {
			if l.Iterations <= 0 || !strings.HasPrefix(l.Name, "Benchmark") || l.Metrics == nil {
				t.Fatalf("bad line %+v from %q", l, in)
			}
		}
	})
}

func TestRewriteHeaders(t *testing.T) {
	tests := []struct {
		name, in string
		set      map[string]string
		want     string
		wantErr  bool
	}{
		{
			name: "replace folded, keep crlf, field spelling and body",
			in:   "From: a@b\r\nSubject: hi\r\n there\r\nmessage-id: <x>\r\n\r\nFrom: body line\r\n",
			set:  map[string]string{"Subject": "new", "Message-ID": "<y>"},
			want: "From: a@b\r\nSubject: new\r\nmessage-id: <y>\r\n\r\nFrom: body line\r\n",
		},
		{
			name: "lf only, duplicate dropped",
			in:   "Date: 1\nDate: 2\nTo: c\n\nbody",
			set:  map[string]string{"Date": "3"},
			want: "Date: 3\nTo: c\n\nbody",
		},
		{
			name:    "missing field",
			in:      "To: c\n\nbody",
			set:     map[string]string{"From": "x"},
			wantErr: true,
		},
		{
			name:    "garbage header line",
			in:      "no colon here\n\nbody",
			set:     map[string]string{"From": "x"},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RewriteHeaders([]byte(tt.in), tt.set)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestGeneratorMakesDistinctParsableMail(t *testing.T) {
	g, err := NewGenerator("../../..", "t1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	seen := map[string]bool{}
	for i := range 8 {
		m, err := g.Mail(i, now)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		from, err := mail.ParseAddress(msg.Header.Get("From"))
		if err != nil || from.Address != m.From {
			t.Errorf("message %d: From %q (%v), want %s", i, msg.Header.Get("From"), err, m.From)
		}
		if got := msg.Header.Get("Message-Id"); got != "<"+m.MessageID+">" || seen[m.MessageID] {
			t.Errorf("message %d: Message-ID %q not the unique %s", i, got, m.MessageID)
		}
		seen[m.MessageID] = true
		if d, err := msg.Header.Date(); err != nil || !d.Equal(now) {
			t.Errorf("message %d: Date %v (%v), want %v", i, d, err, now)
		}
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(d)
	if s.N != 100 || s.Min != time.Millisecond || s.Max != 100*time.Millisecond ||
		s.P50 != 50*time.Millisecond || s.P90 != 90*time.Millisecond || s.P99 != 99*time.Millisecond {
		t.Errorf("got %v", s)
	}
	if d[0] != 100*time.Millisecond {
		t.Error("Summarize reordered its input")
	}
	if one := Summarize([]time.Duration{7}); one.P50 != 7 || one.P99 != 7 {
		t.Errorf("one value: %v", one)
	}
	if e := Summarize(nil); e.N != 0 || e.P50 != 0 || e.P99 != 0 || e.Max != 0 {
		t.Error("empty sample: want the zero summary")
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseRedisCPU(t *testing.T) {
	got, err := parseRedisCPU("# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\nused_cpu_sys_children:9\r\n")
	if err != nil || got != 3750*time.Millisecond {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := parseRedisCPU("used_cpu_sys:1\n"); err == nil {
		t.Error("missing used_cpu_user: no error")
	}
	if _, err := parseRedisCPU("used_cpu_sys:x\nused_cpu_user:1\n"); err == nil {
		t.Error("bad number: no error")
	}
}

func TestClassifySentMail(t *testing.T) {
	ack := "From: s@x\r\nIn-Reply-To: <c1@acme>\r\nAuto-Submitted: auto-replied\r\nX-Ticket-ID: ACME-0001\r\n\r\nbody\r\n"
	fwd := "From: s@x\r\nIn-Reply-To: <c1@acme>\r\nAuto-Submitted: auto-generated\r\nX-Ticket-ID: ACME-0001\r\n\r\nbody\r\n"
	for _, tt := range []struct {
		raw  string
		to   []string
		kind string
	}{
		{ack, []string{"bench-1@acme.co.il"}, KindAck},
		{fwd, []string{QueueAddress}, KindForward},
		{fwd, []string{"someone@else"}, KindOther},
	} {
		s, err := Classify(localMail(tt.raw, tt.to))
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind != tt.kind || s.InReplyTo != "c1@acme" || s.TicketID != "ACME-0001" {
			t.Errorf("%v: got %+v, want kind %s", tt.to, s, tt.kind)
		}
	}
}

func localMail(raw string, to []string) localmail.Mail {
	return localmail.Mail{From: "support@northwind-it.example", To: to, Raw: []byte(raw), At: time.Now()}
}

func TestParseGCTrace(t *testing.T) {
	for _, tt := range []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{"gc 1033 @13.118s 5%: 0.26+2.0+0.003 ms clock, 0.52+0/1.4/1.2+0.007 ms cpu, 5->5->2 MB, 6 MB goal, 0 MB stacks, 0 MB globals, 2 P", 3127 * time.Microsecond, true},
		{"gc 2 @0.1s 1%: 0.1+1+0.1 ms clock, 1+2/3/4+5 ms cpu, 4->4->1 MB, 5 MB goal, 2 P (forced)", 15 * time.Millisecond, true},
		{"time=2026 level=INFO msg=\"gc 3\"", 0, false},
		{"gc 4 @0.1s 1%: 0.1+1+0.1 ms clock, x+2/3/4+5 ms cpu", 0, false},
	} {
		got, ok := parseGCTrace(tt.line)
		if ok != tt.ok || (ok && (got-tt.want > time.Microsecond || tt.want-got > time.Microsecond)) {
			t.Errorf("%q: got %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestExampleConfigUsesAnEphemeralMetricsPort(t *testing.T) {
	w := &World{Vars: map[string]string{"IMAP_HOST": "127.0.0.1", "IMAP_PORT": "1143", "IMAP_TLS": "none",
		"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "1025", "SMTP_TLS": "none", "SMTP_AUTH": "none", "REDIS_PREFIX": "tg-bench-test:"}}
	cfg, err := w.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Service.HTTP != "127.0.0.1:0" {
		t.Errorf("service.http = %q, want 127.0.0.1:0", cfg.Service.HTTP)
	}
	if cfg.Redis.Prefix != "tg-bench-test:" {
		t.Errorf("redis.prefix = %q: the world's variables were not used", cfg.Redis.Prefix)
	}
}

func TestParseStatusMemory(t *testing.T) {
	const status = "Name:\tgateway\nVmPeak:\t 1300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   20480 kB\nThreads:\t8\n"
	tests := []struct {
		name      string
		in        string
		rss, peak int64
		wantErr   bool
	}{
		{name: "both fields", in: status, rss: 20 << 20, peak: 50 << 20},
		{name: "kernel thread without memory", in: "Name:\tkthreadd\nThreads:\t1\n", wantErr: true},
		{name: "only one", in: "VmHWM:\t 10 kB\n", wantErr: true},
		{name: "unknown unit", in: "VmHWM:\t 10 MB\nVmRSS:\t 1 kB\n", wantErr: true},
		{name: "not a number", in: "VmHWM:\t x kB\nVmRSS:\t 1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, peak, err := parseStatusMemory(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if rss != tt.rss || peak != tt.peak {
				t.Errorf("rss, peak = %d, %d; want %d, %d", rss, peak, tt.rss, tt.peak)
			}
		})
	}
}

package classify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
)

// benchConfig builds a configuration with n rules of realistic shape: most
// are keyword lists on the text, some are subject regexps and sender tests;
// the matching rule is the last one, so every rule is tried.
func benchConfig(b testing.TB, n int) *rules.Config {
	b.Helper()
	var sb strings.Builder
	sb.WriteString(`service: {address: support@msp.example}
mailbox: {host: 127.0.0.1, port: 1143, tls: none, username: u, password: p}
smtp: {host: 127.0.0.1, port: 1025, tls: none}
staff: {addresses: ["*@msp.example"], queue: queue@msp.example}
calendars: {office: {timezone: Asia/Jerusalem, week: {sun: "08:00-17:00", mon: "08:00-17:00"}}}
contracts: [{id: acme, match: {domains: [acme.co.il]}, calendar: office}]
rules:
`)
	for i := 0; i < n-1; i++ {
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&sb, "  - {name: kw%d, when: {text: {contains_any: [\"keyword%da\", \"מילה%d\", \"phrase number %d\"]}}, set: {category: fault}}\n", i, i, i, i)
		case 2:
			fmt.Fprintf(&sb, "  - {name: re%d, when: {subject: {matches: '(?i)\\bsystem%d\\b'}}, set: {category: request}}\n", i, i)
		case 3:
			fmt.Fprintf(&sb, "  - {name: from%d, when: {from: {equals: \"user%d@example.com\"}, body: {contains: \"x%d\"}}, set: {priority: high}}\n", i, i, i)
		}
	}
	sb.WriteString("  - {name: last, when: {text: {contains: \"printer\"}}, set: {category: fault, priority: low}}\n")
	cfg, err := rules.Parse("bench.yaml", []byte(sb.String()), rules.LoadOptions{})
	if err != nil {
		b.Fatalf("parse: %v", err)
	}
	if len(cfg.Rules) != n {
		b.Fatalf("rules = %d, want %d", len(cfg.Rules), n)
	}
	return cfg
}

func benchMessage() *domain.Message {
	body := strings.Repeat("Hello team, since this morning the second floor printer shows an error and nobody can print. ", 20) +
		"שלום, המדפסת בקומה השנייה לא מדפיסה מהבוקר.\n"
	return &domain.Message{
		From:    domain.Address{Name: "Yossi", Addr: "yossi@acme.co.il"},
		To:      []domain.Address{{Addr: "support@msp.example"}},
		Subject: "Printer on 2nd floor",
		Text:    body,
	}
}

func BenchmarkClassify(b *testing.B) {
	for _, n := range []int{10, 200, 2000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			c := New(benchConfig(b, n))
			m := benchMessage()
			if got := c.Classify(m); got.Category != domain.Fault || len(got.Rules) != 1 {
				b.Fatalf("unexpected result %+v", got.Rules)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Classify(m)
			}
		})
	}
}

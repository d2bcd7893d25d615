package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/metrics"
)

// The gateway records events as they happen and serves them with the
// readiness checks; a scrape then shows them.
func Example() {
	m := metrics.New()
	arrived := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	m.MessageIngested("support@northwind-it.example", "ticket")
	m.TicketOpened("acme", "fault")
	m.MailSent("ack", arrived, arrived.Add(400*time.Millisecond))

	redisUp := func(context.Context) error { return nil }
	h := m.Handler(metrics.NewReadiness(0, metrics.Check{Name: "redis", Probe: redisUp}), nil)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "ticketgw_tickets_opened_total") || strings.HasPrefix(line, "ticketgw_mail_latency_seconds_count") {
			fmt.Println(line)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// ticketgw_mail_latency_seconds_count{kind="ack"} 1
	// ticketgw_tickets_opened_total{category="fault",contract="acme"} 1
	// 200 ready
}

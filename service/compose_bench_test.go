package service

import (
	"context"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/examples"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
)

// BenchmarkOpenTicketCPU is the CPU a backlog's typical new ticket costs
// the handler apart from Redis: parse, classify, decide, and compose its
// acknowledgement and staff copy (ingest's ~21 KB benchmark message).
func BenchmarkOpenTicketCPU(b *testing.B) {
	data, err := fs.ReadFile(examples.FS, "gateway.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := rules.Parse("examples/gateway.yaml", data, rules.LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile("../ingest/testdata/bench/typical.eml")
	if err != nil {
		b.Fatal(err)
	}
	p := NewPipeline(cfg, tmpl, nil, nil, nil)
	received := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ctx := context.Background()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		o := newOriginal(raw)
		m := ingest.Parse(o.Reader(), ingest.DefaultLimits())
		m.Received = received
		dec, err := Decide(cfg, p.Classifier, m, received, sla.NoUsage{})
		if err != nil {
			b.Fatal(err)
		}
		dec = p.openDecision(dec)
		t := ticketFromDecision(cfg, dec)
		t.ID, t.Status = "ACME-0042", domain.StatusOpen
		if _, _, err := p.composeAck(dec, t); err != nil {
			b.Fatal(err)
		}
		if _, _, err := p.composeForward(ctx, dec, t, o); err != nil {
			b.Fatal(err)
		}
	}
}

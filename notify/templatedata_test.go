package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

func TestNewTicketInfo(t *testing.T) {
	loc := jerusalem(t)
	at := func(m time.Month, d, hh, mm int) time.Time { return time.Date(2026, m, d, hh, mm, 0, 0, loc) }
	tests := []struct {
		name   string
		ticket domain.Ticket
		check  func(t *testing.T, ti TicketInfo)
	}{
		{
			name: "fault in hours",
			ticket: domain.Ticket{ID: "ACME-0042", Category: domain.Fault, Priority: domain.High, Subject: "Server down",
				Opened: at(11, 30, 9, 30), EffectiveStart: at(11, 30, 9, 30), ResponseDue: at(11, 30, 10, 30), ResolutionDue: at(12, 1, 9, 30)},
			check: func(t *testing.T, ti TicketInfo) {
				if ti.Tag != "[ACME-0042]" || ti.OutsideHours || ti.NoTargets || ti.ContractName != "ACME Ltd" {
					t.Errorf("%+v", ti)
				}
			},
		},
		{
			name:   "outside hours, no targets",
			ticket: domain.Ticket{ID: "ACME-0048", Category: domain.Request, Priority: domain.Normal, Opened: at(11, 27, 14, 30), EffectiveStart: at(11, 29, 8, 0)},
			check: func(t *testing.T, ti TicketInfo) {
				if !ti.OutsideHours || !ti.NoTargets || !ti.NextOpening.Equal(at(11, 29, 8, 0)) {
					t.Errorf("%+v", ti)
				}
			},
		},
		{
			name: "imac",
			ticket: domain.Ticket{ID: "ACME-0044", Category: domain.IMAC, Opened: at(11, 29, 9, 10), EffectiveStart: at(11, 29, 9, 10),
				IMACDate: "2026-12-08", IMACQuotaUse: 11, IMACQuota: 10, Billable: true},
			check: func(t *testing.T, ti TicketInfo) {
				if ti.NoTargets || !ti.IMACDate.Equal(at(12, 8, 0, 0)) || ti.IMACQuotaUsed != 11 || !ti.Billable {
					t.Errorf("%+v", ti)
				}
			},
		},
		{
			name:   "no effective start stored",
			ticket: domain.Ticket{ID: "T-0001", Category: domain.Fault, Priority: domain.Low, Opened: at(11, 30, 9, 30), ResponseDue: at(11, 30, 10, 30)},
			check: func(t *testing.T, ti TicketInfo) {
				if !ti.EffectiveStart.Equal(ti.Received) || ti.OutsideHours {
					t.Errorf("%+v", ti)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ti, err := NewTicketInfo(&tc.ticket, "ACME Ltd", loc)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, ti)
			// The result renders.
			d := AckData{Base: Base{ServiceName: "S", ServiceAddress: "s@x.example", Loc: loc}, TicketInfo: ti}
			if _, err := builtins(t).Render(KindAck, LangHebrew, d); err != nil {
				t.Errorf("render: %v", err)
			}
		})
	}
	if _, err := NewTicketInfo(&domain.Ticket{ID: "X-1", IMACDate: "8.12.2026"}, "", loc); err == nil || !strings.Contains(err.Error(), "imac date") {
		t.Errorf("bad IMAC date: err = %v", err)
	}
	if _, err := NewTicketInfo(&domain.Ticket{ID: "X-1"}, "", nil); err == nil {
		t.Error("nil zone accepted")
	}
}

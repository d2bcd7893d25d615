package notify

import (
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

// sample is one named variant of a kind's template data.
type sample struct {
	name string
	data any
}

// SampleData returns realistic data for kind (the SPEC §7 example where it
// applies), or nil for an unknown kind. `gateway classify --show-ack` style
// previews and template authors can render it; Check renders every variant,
// not only this one.
func SampleData(kind string) any {
	s := samples(kind)
	if len(s) == 0 {
		return nil
	}
	return s[0].data
}

// sampleZone is the zone of the SPEC's israel-office calendar. Without tzdata
// on the host the samples fall back to Israel Standard Time, which is what
// Asia/Jerusalem is on every sample date (November to January).
func sampleZone() *time.Location {
	if loc, err := time.LoadLocation("Asia/Jerusalem"); err == nil {
		return loc
	}
	return time.FixedZone("IST", 2*60*60)
}

// samples returns every variant of kind's data. The dates follow the SPEC's
// israel-office calendar (Sun–Thu 08:00–17:00, Monday lunch 12:00–13:00,
// Friday 08:00–12:00) and ACME's contract: fault high 1h/8h, request normal
// 4h/3d, IMAC on Tuesdays with 2 days' notice, 10 a month.
func samples(kind string) []sample {
	loc := sampleZone()
	at := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, loc) }
	base := Base{ServiceName: "Northwind IT Support", ServiceAddress: "support@northwind-it.example", Loc: loc}

	// SPEC §7: a high fault received Monday 30 November 2026 at 09:30.
	fault := TicketInfo{
		TicketID: "ACME-0042", Tag: "[ACME-0042]", ContractName: "ACME Ltd",
		Subject:  "Server down - nobody can log in",
		Category: domain.Fault, Priority: domain.High,
		Received: at(2026, 11, 30, 9, 30), EffectiveStart: at(2026, 11, 30, 9, 30),
		ResponseDue: at(2026, 11, 30, 10, 30), ResolutionDue: at(2026, 12, 1, 9, 30),
		NextOpening: at(2026, 11, 30, 9, 30),
	}
	// A request, normal: 4 business hours across the Monday lunch break, 3
	// business days.
	request := TicketInfo{
		TicketID: "ACME-0043", Tag: "[ACME-0043]", ContractName: "ACME Ltd",
		Subject:  "Please add Yael to the finance shared mailbox",
		Category: domain.Request, Priority: domain.Normal,
		Received: at(2026, 11, 30, 11, 0), EffectiveStart: at(2026, 11, 30, 11, 0),
		ResponseDue: at(2026, 11, 30, 16, 0), ResolutionDue: at(2026, 12, 3, 11, 0),
		NextOpening: at(2026, 11, 30, 11, 0),
	}
	// SPEC §1: a new employee on Sunday morning is an IMAC, scheduled on the
	// next Tuesday that leaves two business days' notice.
	imac := TicketInfo{
		TicketID: "ACME-0044", Tag: "[ACME-0044]", ContractName: "ACME Ltd",
		Subject:  "עובד חדש - צריך משתמש ומחשב, הוא כבר כאן",
		Category: domain.IMAC, Priority: domain.Normal,
		Received: at(2026, 11, 29, 9, 10), EffectiveStart: at(2026, 11, 29, 9, 10),
		NextOpening: at(2026, 11, 29, 9, 10),
		IMACDate:    at(2026, 12, 8, 0, 0), IMACQuotaUsed: 4, IMACQuota: 10,
	}
	billable := imac
	billable.TicketID, billable.Tag = "ACME-0045", "[ACME-0045]"
	billable.Subject = "Move two desks to the second floor"
	billable.IMACQuotaUsed, billable.Billable = 11, true
	deferred := imac
	deferred.TicketID, deferred.Tag = "ACME-0046", "[ACME-0046]"
	deferred.Subject = "Install the new plotter"
	deferred.IMACDate, deferred.IMACQuotaUsed, deferred.Deferred = at(2027, 1, 5, 0, 0), 1, true
	// Saturday night: the clock starts when the office opens on Sunday.
	outside := fault
	outside.TicketID, outside.Tag = "ACME-0047", "[ACME-0047]"
	outside.Subject = "Internet is not working at the Haifa branch"
	outside.Received, outside.EffectiveStart, outside.OutsideHours = at(2026, 11, 28, 22, 15), at(2026, 11, 29, 8, 0), true
	outside.ResponseDue, outside.ResolutionDue = at(2026, 11, 29, 9, 0), at(2026, 11, 29, 16, 0)
	outside.NextOpening = outside.EffectiveStart
	// A category without targets, received Friday afternoon after closing.
	noTargets := request
	noTargets.TicketID, noTargets.Tag = "ACME-0048", "[ACME-0048]"
	noTargets.Subject = "Quote for 5 new laptops"
	noTargets.Received, noTargets.EffectiveStart, noTargets.OutsideHours = at(2026, 11, 27, 14, 30), at(2026, 11, 29, 8, 0), true
	noTargets.ResponseDue, noTargets.ResolutionDue, noTargets.NoTargets = time.Time{}, time.Time{}, true
	noTargets.NextOpening = noTargets.EffectiveStart

	dana := domain.Address{Name: "Dana Levi", Addr: "dana@acme.co.il"}
	yossi := domain.Address{Name: "יוסי כהן", Addr: "yossi.acme@gmail.com"}

	switch kind {
	case KindAck:
		ack := func(ti TicketInfo, who domain.Address) AckData {
			return AckData{Base: base, TicketInfo: ti, CustomerName: who.Name, CustomerAddress: who.Addr}
		}
		return []sample{
			{"fault", ack(fault, dana)},
			{"request", ack(request, dana)},
			{"imac", ack(imac, yossi)},
			{"imac-billable", ack(billable, dana)},
			{"imac-deferred", ack(deferred, domain.Address{Addr: "it-manager@acme.co.il"})},
			{"outside-hours", ack(outside, yossi)},
			{"no-targets", ack(noTargets, dana)},
		}
	case KindForward:
		return []sample{
			{"new", ForwardData{Base: base, TicketInfo: fault, Requester: dana,
				Cc:     []domain.Address{{Name: "IT Manager", Addr: "it-manager@acme.co.il"}, {Addr: "ops@acme.co.il"}},
				Status: domain.StatusOpen, Rules: []string{"outage"}, AckSent: true}},
			{"imac-deferred", ForwardData{Base: base, TicketInfo: deferred, Requester: yossi,
				Status: domain.StatusOpen, Rules: []string{"onboarding"}, Tags: []string{"hardware"}, AckSent: true,
				Warnings: []string{"part 3: unknown charset \"x-unknown\""}}},
			{"follow-up", ForwardData{Base: base, TicketInfo: outside, Requester: yossi,
				Status: domain.StatusOpen, Rules: []string{"outage"}, FollowUp: true, Reopened: true}},
			{"unauthenticated", ForwardData{Base: base, TicketInfo: fault, Requester: dana,
				From:   domain.Address{Name: "Avi (Northwind)", Addr: "avi@northwind-it.example"},
				Status: domain.StatusOpen, Rules: []string{"outage"}, FollowUp: true, Unauthenticated: true,
				AckReason: "unauthenticated"}},
		}
	case KindResolved:
		return []sample{
			{"reopen-window", ResolvedData{Base: base, TicketID: fault.TicketID, Tag: fault.Tag, Subject: fault.Subject,
				CustomerName: dana.Name, Resolved: at(2026, 12, 1, 8, 50), ReopenUntil: at(2026, 12, 15, 8, 50)}},
			{"no-window", ResolvedData{Base: base, TicketID: imac.TicketID, Tag: imac.Tag, Subject: imac.Subject,
				CustomerName: yossi.Name, Resolved: at(2026, 12, 8, 15, 20)}},
		}
	case KindUnknownSender:
		return []sample{
			{"unknown", UnknownSenderData{Base: base, SenderName: "Moshe Katz", SenderAddress: "moshe.katz@gmail.com",
				Subject: "Printer on the 2nd floor is jammed", Received: at(2026, 11, 30, 9, 45)}},
			{"no-name", UnknownSenderData{Base: base, SenderAddress: "office@example.org", Received: at(2026, 11, 28, 22, 15)}},
		}
	case KindCommandError:
		return []sample{
			{"ticket", CommandErrorData{Base: base, TicketID: fault.TicketID, Tag: fault.Tag,
				Subject: "Re: [ACME-0042] Server down - nobody can log in",
				Problems: []CommandProblem{
					{Line: "#priority hgh", Problem: `unknown priority "hgh"; expected urgent, high, normal or low`},
					{Line: "#shedule 2026-12-08", Problem: `unknown command "#shedule"`},
				}}},
			{"no-ticket", CommandErrorData{Base: base, Subject: "New laptop for Yael",
				Problems: []CommandProblem{{Line: "#for yael", Problem: `"yael" is not an email address`}}}},
		}
	case KindWarn:
		return []sample{
			{"response", SLAData{Base: base, TicketInfo: fault, Requester: dana, Status: domain.StatusOpen,
				Deadline: ResponseDeadline, Due: fault.ResponseDue, At: at(2026, 11, 30, 10, 18), WarnAt: 80}},
			{"resolution", SLAData{Base: base, TicketInfo: request, Requester: dana, Status: domain.StatusPending,
				Deadline: ResolutionDeadline, Due: request.ResolutionDue, At: at(2026, 12, 3, 8, 36)}},
		}
	case KindBreach:
		return []sample{
			{"response", SLAData{Base: base, TicketInfo: outside, Requester: yossi, Status: domain.StatusOpen,
				Deadline: ResponseDeadline, Due: outside.ResponseDue, At: outside.ResponseDue}},
			{"resolution", SLAData{Base: base, TicketInfo: fault, Requester: dana, Status: domain.StatusOpen,
				Deadline: ResolutionDeadline, Due: fault.ResolutionDue, At: fault.ResolutionDue}},
		}
	}
	return nil
}

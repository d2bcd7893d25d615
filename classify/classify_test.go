package classify

import (
	"reflect"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
)

func loadTestConfig(t testing.TB) *rules.Config {
	t.Helper()
	cfg, err := rules.Load("testdata/classify.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	return cfg
}

func msg(from, subject, body string) *domain.Message {
	return &domain.Message{From: domain.Address{Addr: from}, Subject: subject, Text: body}
}

func TestContractMatch(t *testing.T) {
	c := New(loadTestConfig(t))
	tests := []struct {
		addr, want, by string
	}{
		{"yossi@acme.co.il", "acme", "domain"},
		{"Yossi@ACME.co.il", "acme", "domain"},
		{"a@tlv.acme.co.il", "acme", "subdomain"},
		{"a@haifa.acme.co.il", "acmehaifa", "domain"}, // the longer domain wins
		{"a@x.haifa.acme.co.il", "acmehaifa", "subdomain"},
		{"boss@gmail.com", "acme", "address"},
		{"other@gmail.com", "", ""},
		{"a@notacme.co.il", "", ""}, // a suffix that is not a subdomain
		{"no-at-sign", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		ct, by := c.Contract(tt.addr)
		got := ""
		if ct != nil {
			got = ct.ID
		}
		if got != tt.want || by != tt.by {
			t.Errorf("Contract(%q) = %q by %q, want %q by %q", tt.addr, got, by, tt.want, tt.by)
		}
	}
}

func TestClassify(t *testing.T) {
	c := New(loadTestConfig(t))
	tests := []struct {
		name     string
		m        *domain.Message
		category domain.Category
		priority domain.Priority
		rules    []string
		tags     []string
		ack      bool
		reason   string
	}{
		{"subject regexp", msg("a@acme.co.il", "Server DOWN since 8", ""), domain.Fault, domain.High, []string{"outage"}, nil, true, ""},
		{"word boundary", msg("a@acme.co.il", "download link", ""), domain.Request, domain.Normal, []string{}, nil, true, ""},
		{"hebrew with niqqud in message", msg("a@acme.co.il", "שלום", "המחשב לֹא עוֹבֵד מהבוקר"), domain.Fault, domain.High, []string{"outage"}, nil, true, ""},
		{"hebrew in subject via text", msg("a@acme.co.il", "אין  אינטרנט!", ""), domain.Fault, domain.High, []string{"outage"}, nil, true, ""},
		{"continue keeps first value", msg("a@acme.co.il", "hi", "the PRINTER jams"), domain.Fault, domain.Low, []string{"printer", "printer-low"}, nil, true, ""},
		{"not combinator", msg("a@acme.co.il", "need toner", "for the printer"), domain.Request, domain.Low, []string{"printer-low"}, nil, true, ""},
		{"vip tag then outage: priority stays urgent", msg("boss@gmail.com", "email not working", ""), domain.Fault, domain.Urgent, []string{"vip-tag", "outage"}, []string{"vip"}, true, ""},
		{"imac", msg("a@acme.co.il", "New Employee on Sunday", ""), domain.IMAC, domain.Normal, []string{"onboarding"}, nil, true, ""},
		{"unknown sender", msg("x@unknown.example", "help", ""), domain.Request, domain.Normal, []string{}, nil, false, ReasonUnknownSender},
		{"staff", msg("tech@msp.example", "hi", ""), domain.Request, domain.Normal, []string{}, nil, false, ReasonStaff},
		{"own address", msg("queue@msp.example", "hi", ""), domain.Request, domain.Normal, []string{}, nil, false, string(domain.Self)},
		{"no sender", msg("", "hi", ""), domain.Request, domain.Normal, []string{}, nil, false, ReasonNoSender},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Classify(tt.m)
			if got.Category != tt.category || got.Priority != tt.priority {
				t.Errorf("got %s/%s, want %s/%s; trace %+v", got.Category, got.Priority, tt.category, tt.priority, got.Trace)
			}
			if !reflect.DeepEqual(got.Rules, tt.rules) {
				t.Errorf("rules = %q, want %q", got.Rules, tt.rules)
			}
			if !reflect.DeepEqual(got.Tags, tt.tags) {
				t.Errorf("tags = %q, want %q", got.Tags, tt.tags)
			}
			if got.Ack != tt.ack || got.AckReason != tt.reason {
				t.Errorf("ack = %v (%q), want %v (%q)", got.Ack, got.AckReason, tt.ack, tt.reason)
			}
		})
	}
}

func TestClassifyFieldsAndActions(t *testing.T) {
	c := New(loadTestConfig(t))
	m := msg("a@acme.co.il", "invoice", "see attached")
	m.Attachments = []domain.Attachment{{Name: "Q3-Invoice.XLSX", Size: 10}}
	got := c.Classify(m)
	if got.Ack || got.AckReason != ReasonRule || got.Category != domain.Request {
		t.Errorf("attachment rule: %+v", got)
	}
	// The same attachment from another contract does not match (contract field).
	m.From.Addr = "a@haifa.acme.co.il"
	if got := c.Classify(m); !got.Ack {
		t.Errorf("contract condition ignored: %+v", got)
	}

	spam := msg("a@acme.co.il", "hello", "")
	spam.Headers = []domain.HeaderField{{Name: "x-spam-flag", Value: "yes"}}
	if got := c.Classify(spam); !got.Drop || got.Ack || got.AckReason != ReasonDrop {
		t.Errorf("drop rule: %+v", got)
	}
}

func TestAutomaticMailIsNeverAcked(t *testing.T) {
	c := New(loadTestConfig(t))
	for _, kind := range []domain.AutoKind{domain.AutoReply, domain.Bounce, domain.List, domain.NoReply} {
		m := msg("a@acme.co.il", "server down", "")
		m.Auto = kind
		got := c.Classify(m)
		if got.Ack || got.AckReason != string(kind) {
			t.Errorf("%s: ack=%v reason=%q", kind, got.Ack, got.AckReason)
		}
		if got.Category != domain.Fault {
			t.Errorf("%s: rules should still run, got %s", kind, got.Category)
		}
	}
	loop := msg("a@acme.co.il", "x", "")
	loop.Headers = []domain.HeaderField{{Name: domain.LoopHeader, Value: "support@msp.example"}}
	if got := c.Classify(loop); got.Ack || got.AckReason != string(domain.Loop) {
		t.Errorf("loop marker: %+v", got)
	}
	other := msg("a@acme.co.il", "x", "")
	other.Headers = []domain.HeaderField{{Name: domain.LoopHeader, Value: "support@other-msp.example"}}
	if got := c.Classify(other); !got.Ack {
		t.Errorf("another gateway's marker must not suppress: %+v", got)
	}
}

func TestTrace(t *testing.T) {
	c := New(loadTestConfig(t))
	got := c.Classify(msg("a@acme.co.il", "VPN not working", ""))
	if len(got.Trace) != 2 {
		t.Fatalf("trace = %+v, want vip-tag (no) and outage (stop)", got.Trace)
	}
	if got.Trace[0].Matched || got.Trace[0].Rule != "vip-tag" {
		t.Errorf("trace[0] = %+v", got.Trace[0])
	}
	s := got.Trace[1]
	if !s.Matched || !s.Stopped || s.Set["category"] != "fault" || !strings.Contains(s.Why, `"not working"`) {
		t.Errorf("trace[1] = %+v", s)
	}
}

func TestRequiredLiteral(t *testing.T) {
	tests := map[string]string{
		`(?i)\bsystem42\b`:      "system42",
		`(?i)\b(down|outage)\b`: "",
		`VPN (is )?broken`:      "broken",
		`(?i)error code: \d+`:   "error",
		`a+bcd`:                 "bcd",
		`(?i)x{0,3}longword`:    "longword",
		`(abc)*`:                "",
		`שרת נפל`:               "",
		`(?i)\.xlsx?$`:          ".xls",
		`[`:                     "",
	}
	for expr, want := range tests {
		if got := requiredLiteral(expr); got != want {
			t.Errorf("requiredLiteral(%q) = %q, want %q", expr, got, want)
		}
	}
}

func TestPrefilterKeepsMatches(t *testing.T) {
	// A regexp whose literal appears only with other case, or next to
	// Hebrew and niqqud, must still match.
	c := New(loadTestConfig(t))
	for _, subj := range []string{"VPN NOT WORKING", "שלום: not working!", "the server is Down."} {
		if got := c.Classify(msg("a@acme.co.il", subj, "")); got.Category != domain.Fault {
			t.Errorf("%q: %s, trace %+v", subj, got.Category, got.Trace)
		}
	}
}

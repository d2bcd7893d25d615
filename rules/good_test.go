package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

// goodEnv is the environment of testdata/good.yaml.
var goodEnv = map[string]string{"IMAP_PASSWORD": "env-imap-secret-31337"}

// goodSecrets are the secret values good.yaml loads, from the environment,
// a file and the Redis URL.
var goodSecrets = []string{"env-imap-secret-31337", "smtp-file-secret-4242", "redis-url-secret-777"}

func loadGood(t *testing.T) *Config {
	t.Helper()
	cfg, err := Load("testdata/good.yaml", testOptions(goodEnv))
	if err != nil {
		t.Fatalf("good.yaml does not load:\n%v", err)
	}
	return cfg
}

func span(s string) *sla.Span {
	sp, err := sla.ParseSpan(s)
	if err != nil {
		panic(err)
	}
	return &sp
}

func TestGood(t *testing.T) {
	cfg := loadGood(t)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("File", cfg.File, "testdata/good.yaml")
	check("Service", cfg.Service, Service{Name: "Northwind IT Support", Address: "support@northwind-it.example", HTTP: "127.0.0.1:9464"})

	if len(cfg.Mailboxes) != 1 {
		t.Fatalf("got %d mailboxes", len(cfg.Mailboxes))
	}
	mb := cfg.Mailboxes[0]
	check("mailbox.Password", mb.Password.Reveal(), "env-imap-secret-31337")
	mb.Password = Secret{}
	check("mailbox", mb, Mailbox{
		Address: "support@northwind-it.example", Host: "imap.northwind-it.example", Port: 993, TLS: "implicit",
		Username: "support@northwind-it.example", Auth: "plain", Folder: "INBOX", ProcessedFolder: "Processed",
		IDLE: true, PollInterval: 30 * time.Second, Pos: Pos{File: "testdata/good.yaml", Line: 8, Col: 3},
	})

	check("smtp.Password", cfg.SMTP.Password.Reveal(), "smtp-file-secret-4242")
	cfg.SMTP.Password = Secret{}
	check("smtp", cfg.SMTP, SMTP{Host: "smtp.northwind-it.example", Port: 587, TLS: "starttls",
		Username: "support@northwind-it.example", Auth: "plain", Connections: 4})

	check("redis.Password", cfg.Redis.Password.Reveal(), "redis-url-secret-777")
	check("redis.URL", cfg.Redis.URL, "redis://127.0.0.1:6379/2")
	check("redis.Prefix", cfg.Redis.Prefix, "tg:")

	check("staff", cfg.Staff, Staff{
		Addresses:         []string{"*@northwind-it.example", "boss@freelance.example"},
		Queue:             "helpdesk@northwind-it.example",
		Escalation:        "noc-lead@northwind-it.example",
		TrustedAuthservID: "mx.northwind-it.example",
	})

	il := cfg.Calendars["israel-office"]
	if il == nil || il.Loc.String() != "Asia/Jerusalem" || il.Name != "israel-office" {
		t.Fatalf("israel-office calendar: %+v", il)
	}
	check("israel mon", il.Week[time.Monday], sla.Hours{{Open: 8 * 60, Close: 12 * 60}, {Open: 13 * 60, Close: 17 * 60}})
	check("israel sat", il.Week[time.Saturday], sla.Hours(nil))
	check("israel holidays", il.Holidays, map[sla.Date]sla.Hours{
		{Year: 2026, Month: 9, Day: 13}: nil,
		{Year: 2026, Month: 9, Day: 20}: {{Open: 8 * 60, Close: 13 * 60}},
		{Year: 2026, Month: 9, Day: 21}: nil,
	})
	check("us-east fri", cfg.Calendars["us-east"].Week[time.Friday], sla.Hours{{Open: 9 * 60, Close: 17 * 60}})

	if len(cfg.Contracts) != 3 {
		t.Fatalf("got %d contracts", len(cfg.Contracts))
	}
	acme := cfg.Contracts[0]
	check("acme.Calendar", acme.Calendar, il)
	acme.Calendar = nil
	check("acme", *acme, Contract{
		ID: "acme", Name: "ACME Ltd", Prefix: "ACME",
		Domains: []string{"acme.co.il"}, Addresses: []string{"yossi.acme@gmail.com"},
		CalendarName: "israel-office", Language: "he", Representative: "dana@northwind-it.example",
		CustomerContacts: []string{"it-manager@acme.co.il"},
		Sites:            map[string]string{"branch.acme.co.il": "Haifa branch", "yossi.acme@gmail.com": "Management"},
		Changes:          []Change{{Date: sla.Date{Year: 2026, Month: 8, Day: 9}, What: "mail moved to Microsoft 365"}},
		SLA: SLA{WarnAt: 0.8, Targets: map[domain.Category]map[domain.Priority]sla.Target{
			domain.Fault: {
				domain.Urgent: {Response: span("30m"), Resolution: span("4h")},
				domain.High:   {Response: span("1h"), Resolution: span("8h")},
				domain.Normal: {Response: span("2h"), Resolution: span("2d")},
				domain.Low:    {Response: span("4h"), Resolution: span("5d")},
			},
			domain.Request: {domain.Normal: {Response: span("4h"), Resolution: span("3d")}},
		}},
		IMAC: &sla.IMACPlan{ServiceDays: []time.Weekday{time.Tuesday}, Notice: *span("2d"),
			MonthlyQuota: 10, PerVisit: 5, OverQuota: "next_month"},
		Pos: Pos{File: "testdata/good.yaml", Line: 42, Col: 5},
	})

	globex := cfg.Contracts[1]
	check("globex defaults", []string{globex.Name, globex.Prefix, globex.Language}, []string{"globex", "GLOBEX", "auto"})
	check("globex warn_at (overrides the merged anchor)", globex.SLA.WarnAt, 0.9)
	check("globex targets (merged from the anchor)", globex.SLA.Targets, acme.SLA.Targets)
	check("globex imac", *globex.IMAC, sla.IMACPlan{ServiceDays: []time.Weekday{time.Wednesday, time.Friday}, OverQuota: "billable"})
	initech := cfg.Contracts[2]
	check("initech", []any{initech.Prefix, initech.IMAC == nil, len(initech.SLA.Targets), initech.SLA.WarnAt},
		[]any{"INI2", true, 0, 0.8})
	if _, ok := initech.SLA.Target(domain.Fault, domain.High); ok {
		t.Errorf("initech has a fault target without any configured")
	}
	if tg, ok := acme.SLA.Target(domain.Request, domain.Urgent); !ok || *tg.Response != *span("4h") {
		t.Errorf("acme request/urgent does not fall back to request/normal: %+v %v", tg, ok)
	}

	check("UnknownSenders", cfg.UnknownSenders, "ticket")
	check("Templates", cfg.Templates, Templates{Dir: filepath.Join("testdata", "templates")})
	check("Limits", cfg.Limits, Limits{AcksPerSenderPerHour: 10, ReopenWindow: 14 * 24 * time.Hour, MaxMessageBytes: 32 << 20})

	var names []string
	for _, r := range cfg.Rules {
		names = append(names, r.Name)
	}
	check("rule names", names, []string{"outage", "vip", "bulk", "onboarding", "quiet", "default"})
}

// condString renders a condition tree compactly for comparison.
func condString(c *Cond) string {
	if c == nil {
		return "always"
	}
	list := func(op string, cs []*Cond) string {
		parts := make([]string, len(cs))
		for i, x := range cs {
			parts[i] = condString(x)
		}
		return op + "(" + strings.Join(parts, ", ") + ")"
	}
	switch {
	case c.All != nil:
		return list("all", c.All)
	case c.Any != nil:
		return list("any", c.Any)
	case c.Not != nil:
		return "not(" + condString(c.Not) + ")"
	}
	var ops []string
	for _, op := range c.Ops {
		s := op.Kind + fmt.Sprintf("%q", op.Values)
		if op.Regexp != nil {
			s += "/re"
		}
		ops = append(ops, s)
	}
	field := c.Field
	if c.Header != "" {
		field += "[" + c.Header + "]"
	}
	return field + ":" + strings.Join(ops, "&")
}

func TestGoodRules(t *testing.T) {
	cfg := loadGood(t)
	want := []struct {
		when string
		set  Actions
		cont bool
	}{
		{`any(subject:matches["(?i)\\b(down|outage|not working)\\b"]/re, text:contains_any["לא עובד" "תקלה" "אינ אינטרנט"])`,
			Actions{Category: domain.Fault, Priority: domain.High}, false},
		{`all(contract:in["acme"], not(from:equals["newsletter@acme.co.il"]))`,
			Actions{Tags: []string{"vip", "acme"}, Ack: ptr(true)}, true},
		{`all(header[List-Id]:contains["announce"], attachment:matches["\\.ics$"]/re)`, Actions{Drop: true}, false},
		{`text:contains_any["new employee" "עובד חדש" "install" "move desk"]`, Actions{Category: domain.IMAC}, false},
		{`all(to:contains["quiet"], cc:equals["${literal}@x.example"])`, Actions{Ack: ptr(false)}, false},
		{`always`, Actions{Category: domain.Request, Priority: domain.Normal}, false},
	}
	if len(cfg.Rules) != len(want) {
		t.Fatalf("got %d rules", len(cfg.Rules))
	}
	for i, w := range want {
		r := cfg.Rules[i]
		if got := condString(r.When); got != w.when {
			t.Errorf("rule %s: when\n got %s\nwant %s", r.Name, got, w.when)
		}
		if !reflect.DeepEqual(r.Set, w.set) || r.Continue != w.cont {
			t.Errorf("rule %s: set %+v continue %v, want %+v %v", r.Name, r.Set, r.Continue, w.set, w.cont)
		}
		if r.Pos.Line < 1 || (r.When != nil && r.When.Pos.Line < r.Pos.Line) {
			t.Errorf("rule %s: bad positions %v / %+v", r.Name, r.Pos, r.When)
		}
	}
	re := cfg.Rules[0].When.Any[0].Ops[0].Regexp
	if !re.MatchString("Server DOWN since 9") || re.MatchString("downtown") {
		t.Errorf("outage regexp compiled wrongly: %v", re)
	}
	// The Hebrew keyword was folded: the final nun of אין became a plain nun.
	if got := cfg.Rules[0].When.Any[1].Ops[0].Values[2]; got != "אינ אינטרנט" {
		t.Errorf("folded value = %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestConfigMethods(t *testing.T) {
	cfg := loadGood(t)
	if c := cfg.ContractByID("globex"); c == nil || c.Prefix != "GLOBEX" {
		t.Errorf("ContractByID(globex) = %+v", c)
	}
	if c := cfg.ContractByID("nope"); c != nil {
		t.Errorf("ContractByID(nope) = %+v", c)
	}
	if c := cfg.ContractByPrefix("acme"); c == nil || c.ID != "acme" {
		t.Errorf("ContractByPrefix(acme) = %+v", c)
	}
	if c := cfg.ContractByPrefix("T"); c != nil {
		t.Errorf("ContractByPrefix(T) = %+v", c)
	}
	wantOwn := []string{"support@northwind-it.example", "helpdesk@northwind-it.example", "noc-lead@northwind-it.example"}
	if got := cfg.Addresses(); !reflect.DeepEqual(got, wantOwn) {
		t.Errorf("Addresses() = %q, want %q", got, wantOwn)
	}
	for _, tc := range []struct {
		addr       string
		own, staff bool
		contract   string
	}{
		{"Support@Northwind-IT.example", true, false, ""},
		{"<helpdesk@northwind-it.example>", true, false, ""},
		{"noc-lead@northwind-it.example", true, false, ""},
		{"dana@northwind-it.example", false, true, ""},
		{"DANA@NORTHWIND-IT.EXAMPLE", false, true, ""},
		{"boss@freelance.example", false, true, ""},
		{"other@freelance.example", false, false, ""},
		{"dana@sub.northwind-it.example", false, false, ""},
		{"it@acme.co.il", false, false, "acme"},
		{"it@branch.acme.co.il", false, false, "acme"},
		{"it@notacme.co.il", false, false, ""},
		{"yossi.acme@gmail.com", false, false, "acme"},
		{"someone@gmail.com", false, false, ""},
		{"cio@globex.example", false, false, "globex"},
		{"peter@initech.example", false, false, "initech-2"},
		{"bill@initech.example", false, false, ""},
		{"not-an-address", false, false, ""},
		{"", false, false, ""},
	} {
		if got := cfg.IsOwnAddress(tc.addr); got != tc.own {
			t.Errorf("IsOwnAddress(%q) = %v", tc.addr, got)
		}
		if got := cfg.IsStaff(tc.addr); got != tc.staff {
			t.Errorf("IsStaff(%q) = %v", tc.addr, got)
		}
		got := ""
		if c := cfg.ContractFor(tc.addr); c != nil {
			got = c.ID
		}
		if got != tc.contract {
			t.Errorf("ContractFor(%q) = %q, want %q", tc.addr, got, tc.contract)
		}
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "B_2": "b"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-${B_2}-y", "x-alpha-b-y", ""},
		{"${EMPTY}", "", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${UNSET:-dflt}", "dflt", ""},
		{"${UNSET:-}", "", ""},
		{"${A:-dflt}", "alpha", ""},
		{"${UNSET:-redis://h:1/0}", "redis://h:1/0", ""},
		{"$${A}", "${A}", ""},
		{"cost $5 {x}", "cost $5 {x}", ""},
		{"$$A", "$$A", ""},
		{"${UNSET}", "", "environment variable UNSET is not set"},
		{"${A", "", `unterminated "${"`},
		{"${}", "", "invalid environment variable name"},
		{"${A B}", "", "invalid environment variable name"},
		{"${9X}", "", "invalid environment variable name"},
	} {
		got, err := expand(tc.in, getenv)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("expand(%q) error = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestEnvAndSecretFiles loads configs from memory with a fake environment
// and a fake file system.
func TestEnvAndSecretFiles(t *testing.T) {
	files := map[string]string{
		"/etc/gw/secrets/imap":   "imap-from-file\r\n",
		"/run/secrets/smtp":      "smtp-from-file\n\n",
		"/etc/gw/secrets/redis":  "redis-from-file",
		"/etc/gw/secrets/spaces": "  keep inner and leading spaces \n",
	}
	opt := LoadOptions{
		Getenv: func(k string) (string, bool) {
			v, ok := map[string]string{"HOST": "imap.env.example", "PORT": "1993", "SECRET_DIR": "/run/secrets"}[k]
			return v, ok
		},
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, fmt.Errorf("open %s: %w", p, errors.ErrUnsupported)
		},
	}
	src := minimal(`mailbox: {host: "${HOST}", port: "${PORT}", password_file: secrets/imap}
smtp: {host: smtp.example, username: u, password_file: "${SECRET_DIR}/smtp"}
redis: {url: "redis://u:url-pw@r.example:6379/0", password_file: secrets/redis}
`)
	cfg, err := Parse("/etc/gw/gateway.yaml", []byte(src), opt)
	if err != nil {
		t.Fatal(err)
	}
	mb := cfg.Mailboxes[0]
	if mb.Host != "imap.env.example" || mb.Port != 1993 || mb.Password.Reveal() != "imap-from-file" {
		t.Errorf("mailbox = %+v (password %q)", mb, mb.Password.Reveal())
	}
	if got := cfg.SMTP.Password.Reveal(); got != "smtp-from-file" {
		t.Errorf("smtp password = %q", got)
	}
	// An explicit password wins over the URL's, and the URL loses its own.
	if got := cfg.Redis.Password.Reveal(); got != "redis-from-file" || cfg.Redis.URL != "redis://u@r.example:6379/0" {
		t.Errorf("redis = %q, %q", cfg.Redis.URL, got)
	}

	src = minimal(`mailbox: {host: imap.example, password_file: secrets/spaces}
smtp: {host: smtp.example}
`)
	cfg, err = Parse("/etc/gw/gateway.yaml", []byte(src), opt)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Mailboxes[0].Password.Reveal(); got != "  keep inner and leading spaces " {
		t.Errorf("only trailing line breaks may be trimmed: %q", got)
	}

	src = minimal(`mailbox: {host: imap.example, password_file: /nope}
smtp: {host: smtp.example}
`)
	_, err = Parse("gateway.yaml", []byte(src), opt)
	if want := "gateway.yaml:1:46: mailbox.password_file: read secret: open /nope: unsupported operation"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// minimal completes a config fragment (mailbox and smtp) into a valid file.
func minimal(fragment string) string {
	return fragment + `service: {address: support@msp.example}
staff: {queue: helpdesk@msp.example}
calendars: {office: {timezone: UTC, week: {mon: "09:00-17:00"}}}
contracts: [{id: acme, match: {domains: [acme.example]}}]
rules: [{name: default, set: {category: request}}]
`
}

func TestMailboxes(t *testing.T) {
	src := minimal(`mailboxes:
  - {host: imap.example}
  - {host: imap.example, address: brand@msp.example, tls: starttls, username: brand, idle: false, poll_interval: 1d}
smtp: {host: 127.0.0.1, tls: none}
`)
	cfg, err := Parse("gw.yaml", []byte(src), testOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mailboxes) != 2 {
		t.Fatalf("mailboxes: %+v", cfg.Mailboxes)
	}
	a, b := cfg.Mailboxes[0], cfg.Mailboxes[1]
	if a.Address != "support@msp.example" || a.Username != "support@msp.example" || a.Port != 993 {
		t.Errorf("first mailbox = %+v", a)
	}
	if b.Address != "brand@msp.example" || b.Username != "brand" || b.Port != 143 || b.IDLE || b.PollInterval != 24*time.Hour {
		t.Errorf("second mailbox = %+v", b)
	}
	if cfg.SMTP.Port != 587 || cfg.SMTP.Auth != "none" || cfg.SMTP.TLS != "none" {
		t.Errorf("smtp = %+v", cfg.SMTP)
	}
	if got := cfg.Addresses(); !reflect.DeepEqual(got, []string{"support@msp.example", "brand@msp.example", "helpdesk@msp.example"}) {
		t.Errorf("Addresses() = %q", got)
	}
	// Defaults of the sections left out.
	if cfg.Redis.URL != DefaultRedisURL || cfg.Service.HTTP != DefaultHTTP || cfg.Service.Name != "Support" ||
		cfg.UnknownSenders != "reply" || cfg.Limits != (Limits{AcksPerSenderPerHour: 5, ReopenWindow: 168 * time.Hour, MaxMessageBytes: 64 << 20}) || cfg.Templates.Dir != "" {
		t.Errorf("defaults: %+v", cfg)
	}
	if c := cfg.Contracts[0]; c.CalendarName != "office" || c.Calendar == nil || c.Language != "en" || c.SLA.WarnAt != 0.8 {
		t.Errorf("contract defaults: %+v", c)
	}
}

// TestSecretsNeverPrinted formats a whole loaded Config every way a program
// might print or log it, and looks for the secret values.
func TestSecretsNeverPrinted(t *testing.T) {
	cfg := loadGood(t)
	if cfg.Mailboxes[0].Password.Reveal() == "" || cfg.SMTP.Password.IsZero() || cfg.Redis.Password.IsZero() {
		t.Fatal("good.yaml lost its secrets")
	}
	var outputs []string
	add := func(format string, args ...any) { outputs = append(outputs, fmt.Sprintf(format, args...)) }
	for _, v := range []any{cfg, *cfg, cfg.Mailboxes, cfg.Mailboxes[0], cfg.SMTP, cfg.Redis, cfg.Redis.Password} {
		add("%v", v)
		add("%+v", v)
		add("%#v", v)
		add("%s", v)
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json of %T: %v", v, err)
		}
		outputs = append(outputs, string(js))
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("config", "cfg", cfg, "smtp", cfg.SMTP, "password", cfg.SMTP.Password, "mailboxes", cfg.Mailboxes)
	}
	outputs = append(outputs, buf.String())
	for _, out := range outputs {
		for _, s := range goodSecrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q printed in:\n%s", s, out)
			}
		}
	}
	if !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("secrets are not shown as [redacted]: %s", buf.String())
	}
}

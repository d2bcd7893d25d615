// Package rules defines the gateway's configuration (SPEC §3): its schema,
// the strict loader (unknown keys are errors, every error carries
// file:line:col, all errors are reported at once), ${ENV} expansion and
// *_file secrets, defaults, and semantic validation. The result is a Config
// whose calendars are ready-made sla.Calendars and whose rule conditions carry
// compiled regexps, so that classify never parses anything.
package rules

import (
	"log/slog"
	"regexp"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

// Secret is a password or token. It never prints: String, GoString,
// LogValue and MarshalJSON all return "[redacted]". Use Reveal to read it.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v} }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return "[redacted]"
}

// GoString implements fmt.GoStringer without revealing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer without revealing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON never reveals the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Pos is a location in a config file.
type Pos struct {
	File      string
	Line, Col int
}

// Config is a loaded, validated configuration.
type Config struct {
	File           string
	Service        Service
	Mailboxes      []Mailbox // `mailbox:` (one) or `mailboxes:` (a list)
	SMTP           SMTP
	Redis          Redis
	Staff          Staff
	Calendars      map[string]*sla.Calendar
	Contracts      []*Contract
	UnknownSenders string // reply | ticket | ignore (default reply)
	Rules          []*Rule
	Templates      Templates
	Limits         Limits
	Reports        Reports
	LMTP           *LMTP // optional `lmtp:` push ingestion (rules/lmtp.go); nil when absent
}

// Service is the `service:` section.
type Service struct {
	Name    string // default "Support"
	Address string // the support address customers write to (required)
	HTTP    string // default 127.0.0.1:9464
}

// Mailbox is one IMAP mailbox (`mailbox:` or an entry of `mailboxes:`).
type Mailbox struct {
	Address            string // defaults to service.address for the first mailbox
	Host               string
	Port               int    // default 993 (implicit), 143 otherwise
	TLS                string // implicit | starttls | none (default implicit)
	AllowPlaintext     bool   // `allow_plaintext: true` permits tls: none to a non-loopback host
	InsecureSkipVerify bool   // `insecure_skip_verify`
	Username           string
	Password           Secret        // `password:` or `password_file:`
	Auth               string        // plain | login | xoauth2 | oauthbearer (default plain; xoauth2 with oauth)
	OAuth              *OAuth        // `oauth:` (see OAuth); nil without
	Folder             string        // default INBOX
	ProcessedFolder    string        // default Processed
	IDLE               bool          // default true
	PollInterval       time.Duration // default 30s
	Pos                Pos
}

// SMTP is the `smtp:` section.
type SMTP struct {
	Host               string
	Port               int    // default 587
	TLS                string // implicit | starttls | none (default starttls)
	AllowPlaintext     bool
	InsecureSkipVerify bool
	Username           string
	Password           Secret // `password:` or `password_file:`
	Auth               string // plain | login | xoauth2 | oauthbearer | none (default plain when username set, else none; xoauth2 with oauth)
	OAuth              *OAuth // `oauth:` (see OAuth); nil without
	Connections        int    // parallel SMTP connections (default 4)
}

// Redis is the `redis:` section.
type Redis struct {
	URL      string // default redis://127.0.0.1:6379/0
	Password Secret // optional `password:`/`password_file:`, overrides the URL's
	Prefix   string // default "tg:"
}

// Staff is the `staff:` section.
type Staff struct {
	Addresses         []string // patterns: exact address or "*@domain"
	Queue             string   // required
	Escalation        string
	TrustedAuthservID string
}

// Contract is one customer contract.
type Contract struct {
	ID               string
	Name             string
	Prefix           string   // ticket id prefix, default upper-cased ID
	Domains          []string // lower-cased
	Addresses        []string // lower-cased
	Calendar         *sla.Calendar
	CalendarName     string
	Language         string // he | en | auto (default en)
	Representative   string
	CustomerContacts []string
	Sites            map[string]string // address or (sub)domain -> site name
	Changes          []Change
	SLA              SLA
	IMAC             *sla.IMACPlan // nil: no IMAC terms (IMACs get the request treatment)
	Pos              Pos
}

// Change is a dated known change, drawn on QBR charts.
type Change struct {
	Date sla.Date
	What string
}

// SLA holds a contract's targets.
type SLA struct {
	WarnAt  float64 // share, 0 < WarnAt < 1 (default 0.8)
	Targets map[domain.Category]map[domain.Priority]sla.Target
}

// Target returns the target for category × priority with the SPEC §3
// fallback: a priority without a target uses the category's normal target; a
// category without any target has none (ok=false).
func (s SLA) Target(c domain.Category, p domain.Priority) (t sla.Target, ok bool) {
	byPrio, found := s.Targets[c]
	if !found || len(byPrio) == 0 {
		return sla.Target{}, false
	}
	if t, ok := byPrio[p]; ok {
		return t, true
	}
	t, ok = byPrio[domain.Normal]
	return t, ok
}

// Rule is one classification rule.
type Rule struct {
	Name     string
	When     *Cond // nil: always matches
	Set      Actions
	Continue bool
	Pos      Pos
}

// Actions is a rule's `set:`. Nil/empty fields are not set by the rule.
type Actions struct {
	Category domain.Category // "" = unset
	Priority domain.Priority // "" = unset
	Tags     []string
	Ack      *bool // `ack: false`
	Drop     bool  // `drop: true`
}

// Cond is a node of a rule condition: a combinator (All, Any, Not) or a leaf
// test of one field. Exactly one of All, Any, Not, Field is set.
type Cond struct {
	All []*Cond
	Any []*Cond
	Not *Cond

	// Field is one of from, to, cc, subject, body, text, header, contract,
	// attachment.
	Field string
	// Header is the header name for Field == "header".
	Header string
	// Ops are the operator tests on the field; all must hold.
	Ops []Op

	Pos Pos
}

// Op is one operator test. Values are already case-folded and normalised
// (NFKC, niqqud removed, final letters mapped) with Fold, except for matches,
// whose Regexp runs on the original text.
type Op struct {
	Kind   string // equals | contains | contains_any | matches | in
	Values []string
	Regexp *regexp.Regexp
	Pos    Pos
}

// Templates is the `templates:` section.
type Templates struct {
	Dir string // overrides built-in templates by file name
}

// Limits are safety limits with defaults (SPEC §6).
type Limits struct {
	AcksPerSenderPerHour int           // default 5
	ReopenWindow         time.Duration // default 7 days (168h)
	MaxMessageBytes      int64         // default 64 MiB
}

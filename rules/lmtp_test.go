package rules

import (
	"io/fs"
	"strings"
	"testing"
)

// lmtpBase is a minimal valid configuration with two mailboxes; each case
// appends its own lmtp (and limits) section.
const lmtpBase = `service: {address: support@msp.example}
mailboxes:
  - {host: imap.msp.example, password: pw}
  - {address: billing@msp.example, host: imap.msp.example, password: pw}
smtp: {host: smtp.msp.example}
staff: {addresses: ["*@msp.example"], queue: helpdesk@msp.example}
calendars:
  office:
    timezone: Europe/London
    week: {mon: "09:00-17:00"}
contracts:
  - id: acme
    match: {domains: [acme.example]}
rules:
  - name: default
    set: {category: request}
`

func TestLMTPSection(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want *LMTP // Pos is not compared
	}{
		{name: "absent", yaml: "", want: nil},
		{name: "defaults", yaml: "lmtp: {}\n", want: &LMTP{
			Listen: DefaultLMTPListen, Network: "tcp", Address: DefaultLMTPListen,
			Mailbox: "support@msp.example", MaxMessageBytes: DefaultMaxMessageBytes,
		}},
		{name: "null section enables the defaults", yaml: "lmtp:\n", want: &LMTP{
			Listen: DefaultLMTPListen, Network: "tcp", Address: DefaultLMTPListen,
			Mailbox: "support@msp.example", MaxMessageBytes: DefaultMaxMessageBytes,
		}},
		{name: "ipv6 loopback, second mailbox named in another case", yaml: "lmtp: {listen: \"[::1]:24\", mailbox: Billing@MSP.example, max_message_bytes: 10MiB}\n", want: &LMTP{
			Listen: "[::1]:24", Network: "tcp", Address: "[::1]:24",
			Mailbox: "billing@msp.example", MaxMessageBytes: 10 << 20,
		}},
		{name: "localhost", yaml: "lmtp: {listen: \"localhost:2424\"}\n", want: &LMTP{
			Listen: "localhost:2424", Network: "tcp", Address: "localhost:2424",
			Mailbox: "support@msp.example", MaxMessageBytes: DefaultMaxMessageBytes,
		}},
		{name: "remote allowed", yaml: "lmtp: {listen: \"0.0.0.0:2424\", allow_remote: true}\n", want: &LMTP{
			Listen: "0.0.0.0:2424", Network: "tcp", Address: "0.0.0.0:2424", AllowRemote: true,
			Mailbox: "support@msp.example", MaxMessageBytes: DefaultMaxMessageBytes,
		}},
		{name: "absolute unix socket", yaml: "lmtp: {listen: \"unix:/run/ticketgw/lmtp.sock\"}\n", want: &LMTP{
			Listen: "unix:/run/ticketgw/lmtp.sock", Network: "unix", Address: "/run/ticketgw/lmtp.sock",
			SocketMode: DefaultLMTPSocketMode, Mailbox: "support@msp.example", MaxMessageBytes: DefaultMaxMessageBytes,
		}},
		{name: "relative unix socket, mode", yaml: "lmtp: {listen: \"unix:run/lmtp.sock\", socket_mode: \"0666\"}\n", want: &LMTP{
			Listen: "unix:run/lmtp.sock", Network: "unix", Address: "/etc/ticketgw/run/lmtp.sock",
			SocketMode: 0o666, Mailbox: "support@msp.example", MaxMessageBytes: DefaultMaxMessageBytes,
		}},
		{name: "limit from limits", yaml: "limits: {max_message_bytes: 1MiB}\nlmtp: {listen: \"${LMTP_LISTEN:-127.0.0.1:24}\"}\n", want: &LMTP{
			Listen: "127.0.0.1:24", Network: "tcp", Address: "127.0.0.1:24",
			Mailbox: "support@msp.example", MaxMessageBytes: 1 << 20,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("/etc/ticketgw/gateway.yaml", []byte(lmtpBase+tc.yaml), testOptions(nil))
			if err != nil {
				t.Fatalf("parse:\n%v", err)
			}
			got := cfg.LMTP
			if tc.want == nil {
				if got != nil {
					t.Fatalf("got %+v, want no lmtp section", got)
				}
				return
			}
			if got == nil {
				t.Fatal("no lmtp section")
			}
			if got.Pos.Line < 1 || got.Pos.File == "" {
				t.Errorf("bad position %+v", got.Pos)
			}
			got.Pos = Pos{}
			if *got != *tc.want {
				t.Errorf("got  %+v\nwant %+v", *got, *tc.want)
			}
		})
	}
}

func TestLMTPSectionErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"lmtp: {listen: \"10.0.0.5:2424\"}\n", "lmtp.listen: LMTP has no authentication: listening on 10.0.0.5"},
		{"lmtp: {listen: \"unix:\"}\n", `lmtp.listen: invalid socket path ""`},
		{"lmtp: {listen: \"2424\"}\n", `lmtp.listen: invalid listen address "2424"`},
		{"lmtp: {listen: \"\"}\n", "lmtp.listen: must not be empty"},
		{"lmtp: {listen: \"127.0.0.1:0\"}\n", "expected a port from 1 to 65535"},
		{"lmtp: {mailbox: other@msp.example}\n", "lmtp.mailbox: other@msp.example is not a configured mailbox"},
		{"lmtp: {listen: \"unix:/s\", socket_mode: \"u+rw\"}\n", `lmtp.socket_mode: invalid mode "u+rw"`},
		{"lmtp: {max_message_bytes: 65GiB}\n", "exceeds limits.max_message_bytes"},
		{"lmtp: [a]\n", "lmtp: expected a mapping, got a list"},
		{"lmtp: {max_message_bytes: lots}\n", `lmtp.max_message_bytes: invalid size "lots"`},
	}
	for _, tc := range tests {
		_, err := Parse("gw.yaml", []byte(lmtpBase+tc.yaml), testOptions(nil))
		if err == nil {
			t.Errorf("%q: loaded without error", tc.yaml)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "gw.yaml:") {
			t.Errorf("%q:\ngot  %v\nwant an error containing %q", tc.yaml, err, tc.want)
		}
	}
}

func TestLMTPSocketModeType(t *testing.T) {
	cfg, err := Parse("gw.yaml", []byte(lmtpBase+"lmtp: {listen: \"unix:/s\", socket_mode: 0o640}\n"), testOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LMTP.SocketMode != fs.FileMode(0o640) {
		t.Errorf("mode %o, want 640", cfg.LMTP.SocketMode)
	}
}

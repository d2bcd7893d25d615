package rules

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// oauthConfig is a complete configuration around a mailbox and an smtp
// section.
func oauthConfig(mailbox, smtp string) []byte {
	return []byte(`service: {address: support@msp.example}
mailbox:
` + mailbox + `
smtp:
` + smtp + `
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
`)
}

const (
	oauthRefreshSecret = "0.AUEA-refresh-secret-5150"
	oauthClientSecret  = "client~secret-8675309"
)

func oauthOptions() LoadOptions {
	return LoadOptions{
		Getenv: func(k string) (string, bool) {
			v, ok := map[string]string{"M365_REFRESH": oauthRefreshSecret, "M365_SECRET": oauthClientSecret, "EMPTY": ""}[k]
			return v, ok
		},
		ReadFile: func(p string) ([]byte, error) {
			if filepath.Base(p) == "refresh.txt" {
				return []byte(oauthRefreshSecret + "\n"), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
	}
}

func TestOAuthGood(t *testing.T) {
	const smtpPlain = "  host: smtp.msp.example\n  username: support@msp.example\n  password: pw"
	tests := []struct {
		name     string
		mailbox  string
		smtp     string
		wantAuth string
		want     *OAuth // the mailbox's, secrets aside
		wantSMTP *OAuth
		refresh  string
		secret   string
	}{
		{
			name: "microsoft delegated, defaults",
			mailbox: `  host: outlook.office365.com
  oauth: {provider: microsoft, client_id: 11111111-2222-3333-4444-555555555555, refresh_token: "${M365_REFRESH}"}`,
			smtp:     smtpPlain,
			wantAuth: "xoauth2",
			want: &OAuth{Provider: "microsoft", ClientID: "11111111-2222-3333-4444-555555555555",
				TokenURL: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
				Scopes:   []string{"https://outlook.office365.com/IMAP.AccessAsUser.All", "offline_access"}},
			refresh: oauthRefreshSecret,
		},
		{
			name: "microsoft client credentials with tenant, oauthbearer, file secret",
			mailbox: `  host: outlook.office365.com
  auth: oauthbearer
  oauth:
    provider: microsoft
    tenant: contoso.onmicrosoft.com
    client_id: app
    client_secret: ${M365_SECRET}`,
			smtp: `  host: smtp.office365.com
  username: support@msp.example
  oauth:
    provider: microsoft
    client_id: app
    refresh_token_file: refresh.txt`,
			wantAuth: "oauthbearer",
			want: &OAuth{Provider: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "app",
				TokenURL: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
				Scopes:   []string{"https://outlook.office365.com/.default"}},
			wantSMTP: &OAuth{Provider: "microsoft", ClientID: "app",
				TokenURL: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
				Scopes:   []string{"https://outlook.office365.com/SMTP.Send", "offline_access"}},
			secret: oauthClientSecret,
		},
		{
			name: "google",
			mailbox: `  host: imap.gmail.com
  auth: xoauth2
  oauth: {provider: google, client_id: 123.apps.googleusercontent.com, client_secret: x, refresh_token: "1//0g-refresh"}`,
			smtp:     smtpPlain,
			wantAuth: "xoauth2",
			want: &OAuth{Provider: "google", ClientID: "123.apps.googleusercontent.com", TokenURL: "https://oauth2.googleapis.com/token",
				Scopes: []string{"https://mail.google.com/"}},
			refresh: "1//0g-refresh", secret: "x",
		},
		{
			name: "custom with scopes",
			mailbox: `  host: mail.example.org
  oauth:
    provider: custom
    token_url: https://sso.example.org/realms/mail/protocol/openid-connect/token
    client_id: gateway
    client_secret: s
    scopes: [imap, offline_access]`,
			smtp:     smtpPlain,
			wantAuth: "xoauth2",
			want: &OAuth{Provider: "custom", ClientID: "gateway", TokenURL: "https://sso.example.org/realms/mail/protocol/openid-connect/token",
				Scopes: []string{"imap", "offline_access"}},
			secret: "s",
		},
		{
			name: "microsoft with a national-cloud token_url",
			mailbox: `  host: outlook.office365.us
  oauth: {provider: microsoft, token_url: "https://login.microsoftonline.us/contoso.us/oauth2/v2.0/token", client_id: app, client_secret: s}`,
			smtp:     smtpPlain,
			wantAuth: "xoauth2",
			want: &OAuth{Provider: "microsoft", ClientID: "app", TokenURL: "https://login.microsoftonline.us/contoso.us/oauth2/v2.0/token",
				Scopes: []string{"https://outlook.office365.com/.default"}},
			secret: "s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("oauth.yaml", oauthConfig(tt.mailbox, tt.smtp), oauthOptions())
			if err != nil {
				t.Fatalf("does not load:\n%v", err)
			}
			mb := cfg.Mailboxes[0]
			if mb.Auth != tt.wantAuth || mb.OAuth == nil {
				t.Fatalf("mailbox auth %q, oauth %v", mb.Auth, mb.OAuth)
			}
			got := *mb.OAuth
			if got.RefreshToken.Reveal() != tt.refresh || got.ClientSecret.Reveal() != tt.secret {
				t.Errorf("secrets: refresh %v, client %v", got.RefreshToken.Reveal() == tt.refresh, got.ClientSecret.Reveal() == tt.secret)
			}
			got.RefreshToken, got.ClientSecret, got.Pos = Secret{}, Secret{}, Pos{}
			if !reflect.DeepEqual(&got, tt.want) {
				t.Errorf("mailbox oauth:\n got %+v\nwant %+v", got, *tt.want)
			}
			if tt.wantSMTP == nil {
				if cfg.SMTP.OAuth != nil {
					t.Errorf("smtp has oauth %+v", cfg.SMTP.OAuth)
				}
			} else {
				so := *cfg.SMTP.OAuth
				if cfg.SMTP.Auth != "xoauth2" || so.Grant() != "refresh_token" || so.RefreshToken.Reveal() != oauthRefreshSecret {
					t.Errorf("smtp: auth %s grant %s", cfg.SMTP.Auth, so.Grant())
				}
				so.RefreshToken, so.ClientSecret, so.Pos = Secret{}, Secret{}, Pos{}
				if !reflect.DeepEqual(&so, tt.wantSMTP) {
					t.Errorf("smtp oauth:\n got %+v\nwant %+v", so, *tt.wantSMTP)
				}
			}
			// Secrets never print.
			js, _ := json.Marshal(cfg)
			for _, out := range []string{fmt.Sprintf("%+v %#v %v", *mb.OAuth, *mb.OAuth, cfg), string(js)} {
				for _, s := range []string{oauthRefreshSecret, oauthClientSecret, "1//0g-refresh"} {
					if strings.Contains(out, s) {
						t.Errorf("a secret prints: %s", out)
					}
				}
			}
		})
	}
}

package rules

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/northwind-it/ticketgw/oauth"
)

// OAuth is the `oauth:` block of a mailbox or of smtp: where and how the
// gateway obtains OAuth 2 access tokens for auth xoauth2 | oauthbearer.
//
//	oauth:
//	  provider: microsoft            # microsoft | google | custom
//	  tenant: contoso.onmicrosoft.com # microsoft only (default organizations)
//	  token_url: https://...         # custom (or to override a preset)
//	  client_id: 00000000-0000-0000-0000-000000000000
//	  client_secret_file: /run/secrets/m365-client-secret   # or client_secret: ${M365_SECRET}
//	  refresh_token_file: /run/secrets/m365-refresh-token   # or refresh_token: ${...}
//	  scopes: [...]                  # default: the provider's for IMAP or SMTP
//
// With a refresh token the refresh-token grant is used (delegated access);
// without one, the client-credentials grant (an application with
// admin-consented permissions), which needs client_secret.
type OAuth struct {
	Provider     string // microsoft | google | custom
	Tenant       string // microsoft: as written ("" when token_url is set)
	TokenURL     string // resolved: written, or the provider's preset
	ClientID     string
	ClientSecret Secret   // `client_secret:` or `client_secret_file:`
	RefreshToken Secret   // `refresh_token:` or `refresh_token_file:`
	Scopes       []string // resolved: written, or the provider's defaults
	Pos          Pos
}

// Grant returns oauth.GrantRefreshToken when a refresh token is configured,
// else oauth.GrantClientCredentials.
func (o *OAuth) Grant() string {
	if !o.RefreshToken.IsZero() {
		return oauth.GrantRefreshToken
	}
	return oauth.GrantClientCredentials
}

var oauthKeys = keys("provider", "tenant", "token_url", "client_id", "client_secret", "client_secret_file",
	"refresh_token", "refresh_token_file", "scopes")

// oauthAuths are the auth methods that carry an access token.
func oauthAuth(auth string) bool { return auth == "xoauth2" || auth == "oauthbearer" }

// oauthFor reads the `oauth:` key of a mailbox or smtp mapping m and checks
// it against the section's auth (which defaults to xoauth2 when oauth is
// present and auth is not) and password. It returns nil without oauth.
func (l *loader) oauthFor(m *mapNode, proto oauth.Protocol, auth *string) *OAuth {
	e := m.get("oauth")
	ae := m.get("auth")
	if e == nil {
		if oauthAuth(*auth) && ae != nil {
			l.errAt(ae.val, ae.path, "%s needs an oauth block (provider, client_id and refresh_token or client_secret) to obtain access tokens", *auth)
		}
		return nil
	}
	switch {
	case ae == nil:
		*auth = "xoauth2"
	case !oauthAuth(*auth):
		l.errAt(ae.val, ae.path, "%s does not use the oauth block: write auth: xoauth2 or oauthbearer, or remove oauth", *auth)
	}
	for _, k := range []string{"password", "password_file"} {
		if pe := m.get(k); pe != nil {
			l.errAt(pe.key, m.path, "%s and oauth are mutually exclusive: the oauth block obtains the access tokens", k)
		}
	}
	return l.oauth(l.mapping(e.path, e.val, e.key, oauthKeys), proto)
}

// oauth reads an `oauth:` mapping.
func (l *loader) oauth(m *mapNode, proto oauth.Protocol) *OAuth {
	o := &OAuth{
		Provider:     m.choice("provider", "", oauth.Providers()...),
		Tenant:       m.nonEmpty("tenant", ""),
		TokenURL:     m.nonEmpty("token_url", ""),
		ClientID:     m.nonEmpty("client_id", ""),
		ClientSecret: m.secret("client_secret"),
		RefreshToken: m.secret("refresh_token"),
		Pos:          l.pos(m.n),
	}
	m.require("provider")
	m.require("client_id")
	if e := m.get("client_id"); e != nil && strings.ContainsAny(o.ClientID, " \t\r\n") {
		l.errAt(e.val, e.path, "invalid client id %q: expected the application (client) id, without white space", o.ClientID)
	}
	for _, k := range []string{"client_secret", "refresh_token"} {
		if e := m.get(k); e != nil {
			s := o.ClientSecret
			if k == "refresh_token" {
				s = o.RefreshToken
			}
			switch {
			case s.IsZero():
				l.errAt(e.val, e.path, "must not be empty")
			case !oauth.ValidToken(s.Reveal()):
				l.errAt(e.val, e.path, "contains white space or control characters: expected the value exactly as issued")
			}
		}
	}

	// The grant follows from the keys written, not from their values, so
	// that an unreadable secret file is not reported twice.
	hasRefresh := m.has("refresh_token") || m.has("refresh_token_file")
	hasSecret := m.has("client_secret") || m.has("client_secret_file")
	grant := oauth.GrantClientCredentials
	if hasRefresh {
		grant = oauth.GrantRefreshToken
	}
	if !hasRefresh && !hasSecret && m.present {
		l.errAt(m.n, m.path, "missing credentials: add refresh_token (or refresh_token_file) for delegated access, or client_secret (or client_secret_file) for the client credentials grant")
	} else if !hasRefresh && !oauth.GrantSupported(o.Provider, grant) {
		l.errAt(m.n, m.path, "provider %s needs refresh_token (or refresh_token_file): it offers no client credentials grant for mail", o.Provider)
	}

	te, ue := m.get("tenant"), m.get("token_url")
	if te != nil && o.Provider != "" && o.Provider != oauth.ProviderMicrosoft {
		l.errAt(te.key, m.path, "tenant applies only to provider microsoft")
	} else if te != nil && o.Tenant != "" && !validTenant(o.Tenant) {
		l.errAt(te.val, te.path, "invalid tenant %q: expected the directory (tenant) id or a domain such as contoso.onmicrosoft.com", o.Tenant)
	}
	if te != nil && ue != nil {
		l.errAt(ue.key, m.path, "tenant and token_url are mutually exclusive: token_url replaces the tenant's endpoint")
	}
	if ue != nil && o.TokenURL != "" {
		if err := oauth.CheckTokenURL(o.TokenURL); err != nil {
			l.errAt(ue.val, ue.path, "%v", err)
		}
	}
	switch {
	case o.Provider == oauth.ProviderCustom && ue == nil:
		l.errAt(m.n, m.path, "provider custom needs token_url")
	case o.Provider != "" && o.Provider != oauth.ProviderCustom && ue == nil:
		o.TokenURL, _ = oauth.ProviderTokenURL(o.Provider, o.Tenant)
		if o.Provider == oauth.ProviderMicrosoft && grant == oauth.GrantClientCredentials && hasSecret {
			switch {
			case te == nil:
				l.errAt(m.n, m.path, "the client credentials grant needs tenant: the directory (tenant) id or a verified domain")
			case oauth.MicrosoftMultiTenant(o.Tenant):
				l.errAt(te.val, te.path, "%s works only with refresh_token: the client credentials grant needs the directory (tenant) id or a verified domain", o.Tenant)
			}
		}
	}

	if e := m.get("scopes"); e != nil {
		o.Scopes = l.scopes(e)
	} else if o.Provider != "" {
		o.Scopes = oauth.DefaultScopes(o.Provider, proto, grant)
	}
	return o
}

// scopes reads a non-empty list of distinct scope tokens.
func (l *loader) scopes(e *entry) []string {
	nodes, list := l.strList(e.path, e.val)
	if len(list) == 0 {
		if v := l.resolve(e.val); isNull(v) || v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			l.errAt(v, e.path, "expected at least one scope (leave scopes out for the provider's defaults)")
		}
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for i, s := range list {
		path := index(e.path, i)
		switch {
		case s == "":
			l.errAt(nodes[i], path, "must not be empty")
		case strings.ContainsAny(s, " \t\r\n\"\\"):
			l.errAt(nodes[i], path, "invalid scope %q: one scope per list item, without spaces or quotes", s)
		case seen[s]:
			l.errAt(nodes[i], path, "duplicate scope %q", s)
		default:
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// validTenant accepts a GUID or a domain name.
func validTenant(s string) bool {
	if len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.HasPrefix(s, "-") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

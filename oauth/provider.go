package oauth

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Providers with presets.
const (
	ProviderMicrosoft = "microsoft" // Microsoft Entra ID (Azure AD) v2.0: Microsoft 365 / Exchange Online
	ProviderGoogle    = "google"    // Google Workspace and Gmail
	ProviderCustom    = "custom"    // any RFC 6749 token endpoint
)

// Grants (RFC 6749 grant_type values).
const (
	GrantRefreshToken      = "refresh_token"      // delegated: a user consented once, the refresh token stands for them
	GrantClientCredentials = "client_credentials" // application: client id and secret, admin-consented
)

// Protocol is what a token is used for; Microsoft's scopes differ.
type Protocol string

// Protocols.
const (
	IMAP Protocol = "imap"
	SMTP Protocol = "smtp"
)

// Token endpoints and scopes of the presets.
const (
	GoogleTokenURL  = "https://oauth2.googleapis.com/token"
	ScopeGoogleMail = "https://mail.google.com/"

	ScopeMicrosoftIMAP = "https://outlook.office365.com/IMAP.AccessAsUser.All"
	ScopeMicrosoftSMTP = "https://outlook.office365.com/SMTP.Send"
	// ScopeMicrosoftApp is the client-credentials scope: every application
	// permission granted to the app on Exchange Online.
	ScopeMicrosoftApp = "https://outlook.office365.com/.default"
	// ScopeOfflineAccess asks Microsoft for a (rotated) refresh token along
	// with the access token.
	ScopeOfflineAccess = "offline_access"

	// MicrosoftDefaultTenant serves work and school accounts of any tenant
	// (delegated access only; client credentials need the tenant itself).
	MicrosoftDefaultTenant = "organizations"
)

// Providers lists the provider names, presets first.
func Providers() []string { return []string{ProviderMicrosoft, ProviderGoogle, ProviderCustom} }

// MicrosoftTokenURL returns the v2.0 token endpoint of tenant (a tenant id,
// a verified domain, or organizations/common/consumers).
func MicrosoftTokenURL(tenant string) string {
	if tenant == "" {
		tenant = MicrosoftDefaultTenant
	}
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// MicrosoftMultiTenant reports whether tenant is one of Microsoft's
// multi-tenant aliases, which the client-credentials grant refuses.
func MicrosoftMultiTenant(tenant string) bool {
	switch strings.ToLower(tenant) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// ProviderTokenURL returns the preset token endpoint of provider; custom
// providers have none.
func ProviderTokenURL(provider, tenant string) (string, error) {
	switch provider {
	case ProviderMicrosoft:
		return MicrosoftTokenURL(tenant), nil
	case ProviderGoogle:
		return GoogleTokenURL, nil
	case ProviderCustom:
		return "", fmt.Errorf("provider %s has no preset token endpoint", provider)
	}
	return "", fmt.Errorf("unknown provider %q: want %s", provider, strings.Join(Providers(), ", "))
}

// DefaultScopes returns the scopes to request from provider for proto with
// grant, or nil when the provider has no preset (custom).
func DefaultScopes(provider string, proto Protocol, grant string) []string {
	switch provider {
	case ProviderMicrosoft:
		if grant == GrantClientCredentials {
			return []string{ScopeMicrosoftApp}
		}
		if proto == SMTP {
			return []string{ScopeMicrosoftSMTP, ScopeOfflineAccess}
		}
		return []string{ScopeMicrosoftIMAP, ScopeOfflineAccess}
	case ProviderGoogle:
		return []string{ScopeGoogleMail}
	}
	return nil
}

// GrantSupported reports whether provider offers grant for mail access.
// Google has no client-credentials grant (its service accounts sign JWT
// assertions instead, which this package does not do).
func GrantSupported(provider, grant string) bool {
	if provider == ProviderGoogle {
		return grant == GrantRefreshToken
	}
	return slices.Contains([]string{GrantRefreshToken, GrantClientCredentials}, grant)
}

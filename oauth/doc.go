// Package oauth obtains OAuth 2 access tokens for mailbox authentication
// (SPEC §3: auth xoauth2 | oauthbearer) and speaks the two SASL mechanisms
// that carry them.
//
// Microsoft 365 and Gmail no longer accept passwords over IMAP and SMTP. A
// Source holds the long-lived credential (a refresh token, or a client id
// and secret for the client-credentials grant) and hands out short-lived
// access tokens from the provider's token endpoint (RFC 6749 §6 and §4.4):
//
//   - tokens are cached and refreshed before they expire: at 80 % of their
//     lifetime, but never earlier than 5 minutes before expiry;
//   - concurrent callers share one request to the endpoint;
//   - a refresh token the endpoint rotates replaces the old one, in memory
//     and, with Config.Tokens, in a RefreshTokenStore, so that a restart
//     presents the latest one and instances sharing the store refresh in
//     turn, each presenting the token the last one received (the rotation
//     is logged, the token never is);
//   - a refused refresh is a *RefreshError that carries the endpoint's
//     error and error_description (invalid_grant, invalid_client, ...);
//   - an Observer hears of every refresh and every failure (metrics);
//   - Invalidate drops a token the mail server refused, so that the next
//     login gets a fresh one.
//
// Presets name the token endpoints and scopes of Microsoft (Entra ID v2.0)
// and Google; any other RFC 6749 endpoint works as "custom".
//
// XOAuth2Client and OAuthBearerClient (RFC 7628) implement go-sasl's
// sasl.Client for go-imap's Authenticate and go-smtp's Auth. go-sasl has no
// XOAUTH2, and its OAUTHBEARER client returns the server's error challenge
// from Next, which makes go-imap abandon the AUTHENTICATE command half-way;
// ours answer the challenge as the mechanisms require and keep the server's
// status for ServerError.
//
// Only the standard library is used for HTTP: the token endpoint needs one
// form POST and one JSON decode, and golang.org/x/oauth2 would neither
// report rotations nor let callers invalidate a refused token.
package oauth

package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/rules"
)

// tokenSource is what the IMAP source and the SMTP sender need from an
// oauth.Source.
type tokenSource interface {
	Token(ctx context.Context) (string, error)
	Invalidate(token string) bool
	// Wait returns once no refresh is in progress (see oauth.Source.Wait).
	Wait(ctx context.Context) error
}

// tokenWaitTimeout bounds how long Close waits for OAuth refreshes in
// progress, so that a refresh token the endpoint rotates during a reload or
// a stop is saved before Redis is closed: a request's timeout and a save.
const tokenWaitTimeout = oauth.DefaultTimeout + 10*time.Second

// newTokenSource builds the access-token source of an `oauth:` block for
// the account name (the mailbox address or the SMTP user name). It returns
// a nil interface (never a typed nil) when o is nil. obs, if not nil, hears
// about every refresh; tokens, if not nil, keeps the refresh token the
// endpoint rotates across restarts (the gateway's Redis store).
func newTokenSource(o *rules.OAuth, name string, log *slog.Logger, obs oauth.Observer, tokens oauth.RefreshTokenStore) (tokenSource, error) {
	if o == nil {
		return nil, nil
	}
	src, err := oauth.NewSource(oauth.Config{
		Name:         name,
		TokenURL:     o.TokenURL,
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret.Reveal(),
		RefreshToken: o.RefreshToken.Reveal(),
		Scopes:       o.Scopes,
		Observer:     obs,
		Logger:       log.With("component", "oauth"),
		Tokens:       tokens,
	})
	if err != nil {
		return nil, fmt.Errorf("oauth for %s: %w", name, err)
	}
	log.Info("oauth token source ready", slog.Any("oauth", src))
	return src, nil
}

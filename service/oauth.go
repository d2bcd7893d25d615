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
	// Close makes refreshes that have not sent their request give up, and
	// Wait returns once none is in progress (see oauth.Source.Close).
	Close()
	Wait(ctx context.Context) error
}

// tokenWaitTimeout bounds how long Close waits for an OAuth refresh whose
// request is out, so that a refresh token the endpoint rotates during a
// reload or a stop is saved before Redis is closed: the request's timeout
// and the saves' (three attempts of 5 s). A refresh still waiting for
// another instance's lock is abandoned at once (oauth.Source.Close).
const tokenWaitTimeout = oauth.DefaultTimeout + 20*time.Second

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

package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/oauth/oauthtest"
)

// memTokens is a RefreshTokenStore in memory, shared by the Sources of a
// test as Redis is by the gateway's instances and restarts.
type memTokens struct {
	mu        sync.Mutex
	m         map[string]string
	loadErr   error
	saveErr   error
	saves     int
	lastSaved string
}

func (s *memTokens) LoadRefreshToken(_ context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return "", s.loadErr
	}
	return s.m[key], nil
}

func (s *memTokens) SaveRefreshToken(_ context.Context, key, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saveErr != nil {
		return s.saveErr
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[key] = token
	s.saves++
	s.lastSaved = token
	return nil
}

func (s *memTokens) only() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.m {
		return v
	}
	return ""
}

func withTokens(st oauth.RefreshTokenStore) func(*oauth.Config) {
	return func(c *oauth.Config) { c.Tokens = st }
}

// The failure this prevents: an endpoint that rotates refresh tokens and
// revokes the one it replaced (reuse detection) refuses the configured
// token after a restart, and the mailbox stops.
func TestSourceSavedRotatedTokenSurvivesARestart(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret, Rotate: true, RevokeRotated: true})
	st := &memTokens{}
	first, _, logs := newSource(t, srv, nil, withTokens(st))
	mustToken(t, first) // presents rt-0, gets rt-1 (rt-0 revoked)
	if st.only() != "rt-1" {
		t.Fatalf("saved %q, want rt-1", st.only())
	}
	restarted, _, _ := newSource(t, srv, nil, withTokens(st))
	mustToken(t, restarted) // presents rt-1, gets rt-2
	if st.only() != "rt-2" {
		t.Fatalf("after the restart's refresh: saved %q, want rt-2", st.only())
	}
	// Without the store, a restart presents the configured token: refused.
	bare, _, _ := newSource(t, srv, nil, nil)
	_, err := bare.Token(t.Context())
	var re *oauth.RefreshError
	if !errors.As(err, &re) || re.Code != "invalid_grant" {
		t.Fatalf("control without a store: err = %v, want invalid_grant", err)
	}
	if got, want := fmt.Sprint(srv.RefreshTokensUsed()), "[rt-0 rt-1 rt-0]"; got != want {
		t.Errorf("refresh tokens presented: %s, want %s", got, want)
	}
	if out := logs.String(); strings.Contains(out, "rt-1") || !strings.Contains(out, "saving the new one") {
		t.Errorf("log reveals the token or does not say it was saved:\n%s", out)
	}
}

// Two instances share the store (a rolling deploy, a second gateway): the
// one whose token the other's rotation revoked tries the saved one.
func TestSourceTriesTheTokenAnotherInstanceSaved(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret, Rotate: true, RevokeRotated: true})
	st := &memTokens{}
	a, _, _ := newSource(t, srv, nil, withTokens(st))
	b, _, logs := newSource(t, srv, nil, withTokens(st))
	tokA := mustToken(t, a) // rt-0 -> rt-1, saved
	mustToken(t, b)         // loads rt-1 -> rt-2, saved; a's rt-1 is revoked
	if !a.Invalidate(tokA) {
		t.Fatal("Invalidate refused a's token")
	}
	mustToken(t, a) // presents rt-1: refused; then the saved rt-2 -> rt-3
	if got, want := fmt.Sprint(srv.RefreshTokensUsed()), "[rt-0 rt-1 rt-1 rt-2]"; got != want {
		t.Errorf("refresh tokens presented: %s, want %s", got, want)
	}
	if st.only() != "rt-3" {
		t.Errorf("saved %q, want rt-3", st.only())
	}
	if out := logs.String(); !strings.Contains(out, "using the refresh token saved") {
		t.Errorf("b did not say it used the saved token:\n%s", out)
	}
}

// A saved token the endpoint no longer accepts falls back to the
// configured one once.
func TestSourceFallsBackToTheConfiguredToken(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret})
	st := &memTokens{}
	seed, _, _ := newSource(t, srv, nil, withTokens(&seeder{st: st, token: "rt-stale"}))
	mustToken(t, seed) // only to save "rt-stale" under the credential's key
	s, _, _ := newSource(t, srv, nil, withTokens(st))
	mustToken(t, s)
	if got, want := fmt.Sprint(srv.RefreshTokensUsed()), "[rt-0 rt-stale rt-0]"; got != want {
		t.Errorf("refresh tokens presented: %s, want %s", got, want)
	}
	if st.only() != "rt-0" {
		t.Errorf("saved %q after the fallback, want the token that worked (rt-0)", st.only())
	}
	// The next start presents it at once.
	again, _, _ := newSource(t, srv, nil, withTokens(st))
	mustToken(t, again)
	if got, want := fmt.Sprint(srv.RefreshTokensUsed()), "[rt-0 rt-stale rt-0 rt-0]"; got != want {
		t.Errorf("refresh tokens presented: %s, want %s", got, want)
	}
}

// seeder saves token under whatever key the Source asks for.
type seeder struct {
	st    *memTokens
	token string
}

func (s *seeder) LoadRefreshToken(ctx context.Context, key string) (string, error) {
	return "", s.st.SaveRefreshToken(ctx, key, s.token)
}

func (s *seeder) SaveRefreshToken(context.Context, string, string) error { return nil }

func TestSourceWithAnUnreachableStoreUsesTheConfiguredToken(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret, Rotate: true})
	st := &memTokens{loadErr: errors.New("redis down"), saveErr: errors.New("redis down")}
	s, _, logs := newSource(t, srv, nil, withTokens(st))
	mustToken(t, s)
	out := logs.String()
	for _, want := range []string{"cannot read the saved refresh token", "could not be saved"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if got := fmt.Sprint(srv.RefreshTokensUsed()); got != "[rt-0]" {
		t.Errorf("presented %s, want [rt-0]", got)
	}
}

// A new refresh token in the configuration is used, not what was saved
// for the old one.
func TestSourceNewConfiguredTokenStartsAfresh(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret, Rotate: true})
	st := &memTokens{}
	old, _, _ := newSource(t, srv, nil, withTokens(st))
	mustToken(t, old) // rt-0 -> rt-1 saved under rt-0's key
	fresh, _, _ := newSource(t, srv, nil, func(c *oauth.Config) { c.Tokens = st; c.RefreshToken = "rt-1" })
	mustToken(t, fresh)
	if got, want := fmt.Sprint(srv.RefreshTokensUsed()), "[rt-0 rt-1]"; got != want {
		t.Errorf("presented %s, want %s", got, want)
	}
	st.mu.Lock()
	n := len(st.m)
	st.mu.Unlock()
	if n != 2 {
		t.Errorf("%d keys saved, want one per configured token", n)
	}
}

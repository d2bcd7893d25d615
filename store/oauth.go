package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// oauthTokenTTL bounds how long a saved refresh token outlives its last
// rotation: longer than any provider lets one live unused (Entra ID: 90
// days), so that only the tokens of credentials no longer configured go.
const oauthTokenTTL = 400 * 24 * time.Hour

func (k keys) oauthToken(key string) string { return k.p + "{oauth:" + escapeTag(key) + "}" }

// LoadRefreshToken returns the refresh token saved under key ("" when
// none). It implements oauth.RefreshTokenStore.
func (s *Store) LoadRefreshToken(ctx context.Context, key string) (string, error) {
	t, err := s.rdb.Get(ctx, s.k.oauthToken(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read saved oauth refresh token: %w", err)
	}
	return t, nil
}

// SaveRefreshToken saves token under key. It implements
// oauth.RefreshTokenStore. The token is a credential: Redis must be as
// private as the configuration file that holds the first one.
func (s *Store) SaveRefreshToken(ctx context.Context, key, token string) error {
	if key == "" || token == "" {
		return errors.New("save oauth refresh token: empty key or token")
	}
	if err := s.rdb.Set(ctx, s.k.oauthToken(key), token, oauthTokenTTL).Err(); err != nil {
		return fmt.Errorf("save oauth refresh token: %w", err)
	}
	return nil
}

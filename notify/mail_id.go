package notify

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
)

// mailIDEncoding writes the random part of generated Message-IDs: lower-case
// base32 without padding, safe in a msg-id and in a file name.
var mailIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewMessageID returns a fresh Message-ID (without angle brackets) of the
// form "<kind>.<ticket>.<random>@<domain>", e.g.
// "ack.ACME-0042.k3x9...@support.example.com". kind says what the message is
// ("ack", "fwd", "relay", ...); ticket may be empty. The random part has 128
// bits, so ids never collide and a customer cannot guess the id (and with it
// the multipart boundaries, see mailBoundary) of a message before it exists.
func NewMessageID(kind, ticket, domain string) (string, error) {
	var buf [16]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("new message-id: %w", err)
	}
	parts := make([]string, 0, 3)
	for _, p := range []string{kind, ticket} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	parts = append(parts, mailIDEncoding.EncodeToString(buf[:]))
	id := strings.Join(parts, ".") + "@" + domain
	if _, err := mailOwnID(id); err != nil {
		return "", fmt.Errorf("new message-id: %w", err)
	}
	if strings.ContainsAny(kind+ticket, "@") {
		return "", fmt.Errorf("new message-id: kind %q or ticket %q contains @", kind, ticket)
	}
	return id, nil
}

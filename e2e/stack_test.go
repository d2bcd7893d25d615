package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/internal/mailstack"
)

// testDomains are the domains the private Postfix accepts and hands to
// Dovecot: the MSP's own and the two customers' of examples/gateway.yaml.
// Mail for any other domain bounces (default_transport = error), so
// nothing can leave the machine.
var testDomains = []string{"northwind-it.example", "acme.co.il", "globex.example"}

// Fixed addresses of examples/gateway.yaml.
const (
	supportAddr    = "support@northwind-it.example"
	helpdeskAddr   = "helpdesk@northwind-it.example"
	escalationAddr = "noc-lead@northwind-it.example"
	trustedAuthID  = "mx.northwind-it.example"
)

// toolset is what the suite needs from the machine, found once.
type toolset struct {
	goTool    string
	redisAddr string
}

// requireTools finds the daemons and the account that owns the mail folders
// (mailstack.Missing), the go command and Redis. A missing piece fails the
// test under CI=true and skips it otherwise, saying what is missing and how
// to get it.
func requireTools(t *testing.T) *toolset {
	t.Helper()
	missing := mailstack.Missing()
	ts := &toolset{}
	if p, err := exec.LookPath("go"); err == nil {
		ts.goTool = p
	} else if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); fileExists(p) {
		ts.goTool = p
	} else {
		missing = append(missing, "the go command")
	}
	ts.redisAddr = os.Getenv("REDIS_ADDR")
	if ts.redisAddr == "" {
		ts.redisAddr = "127.0.0.1:6379"
	}
	if err := pingRedis(ts.redisAddr); err != nil {
		missing = append(missing, fmt.Sprintf("redis at %s ($REDIS_ADDR): %v", ts.redisAddr, err))
	}
	if len(missing) > 0 {
		msg := "the real mail stack suite needs: " + strings.Join(missing, "; ") + " — `bash .ci/run` installs and starts them"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return ts
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// mailStack is the private Dovecot and Postfix of a test
// (internal/mailstack, shared with the benchmarks).
type mailStack struct {
	*mailstack.Stack
	tools *toolset
}

// startMailStack starts Dovecot and Postfix with accounts for users (the
// gateway's own addresses are always there) for the test domains, and
// stops them, removing every file, when the test ends (their logs are
// shown when it failed, or with -logs).
func startMailStack(t *testing.T, tools *toolset, users ...string) *mailStack {
	t.Helper()
	base := []string{supportAddr, helpdeskAddr, escalationAddr, "dana@northwind-it.example", "sam@northwind-it.example"}
	start := time.Now()
	st, err := mailstack.Start(mailstack.Options{Users: append(base, users...), Domains: testDomains})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mail stack up in %v: imap %s, lmtp %s, smtp %s", time.Since(start).Round(time.Millisecond), st.IMAPAddr, st.LMTPAddr, st.SMTPAddr)
	t.Cleanup(func() {
		if t.Failed() || *showLogs {
			t.Log(st.Logs())
		}
		if err := st.Stop(); err != nil {
			t.Error(err)
		}
	})
	return &mailStack{Stack: st, tools: tools}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

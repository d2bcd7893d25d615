package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/internal/mailstack"
)

// showLogs prints the gateway's and the daemons' logs even when a test
// passes: go test ./e2e -run TestRealMailStack/NewTickets -v -args -logs
var showLogs = flag.Bool("logs", false, "print the gateway's and the mail daemons' logs")

// exampleConfig is the annotated configuration the suite runs unchanged
// but for its HTTP listen address; every connection detail comes from the
// ${VAR:-default} variables it reads.
const exampleConfig = "../examples/gateway.yaml"

// buildGateway compiles cmd/gateway into a fresh folder, with the race
// detector when the suite itself runs with it, so that a data race in the
// product fails the suite too.
func buildGateway(t *testing.T, tools *toolset) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gateway")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.goTool, args...)
	cmd.Dir = ".." // the module root
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built the gateway (race detector %v) in %v", raceEnabled, time.Since(start).Round(time.Millisecond))
	return bin
}

// gatewaySetup is one gateway's configuration on a mail stack: the example
// config file, the environment that points it at the stack, and a Redis
// prefix of its own (its keys are deleted when the test ends).
type gatewaySetup struct {
	bin, dir, config string
	env              []string
	stack            *mailStack
	redisPrefix      string
	runs             int
}

func newGatewaySetup(t *testing.T, bin string, stack *mailStack) *gatewaySetup {
	t.Helper()
	dir := t.TempDir()
	raw, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatalf("read the example configuration: %v", err)
	}
	// The metrics listener must not collide with parallel tests.
	const httpLine = "http: 127.0.0.1:9464"
	if !bytes.Contains(raw, []byte(httpLine)) {
		t.Fatalf("%s no longer has %q: update the suite", exampleConfig, httpLine)
	}
	ports, err := mailstack.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.Replace(raw, []byte(httpLine), []byte("http: 127.0.0.1:"+strconv.Itoa(ports[0])), 1)
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, raw, 0o600); err != nil {
		t.Fatalf("write the configuration: %v", err)
	}
	imapHost, imapPort, _ := strings.Cut(stack.IMAPAddr, ":")
	smtpHost, smtpPort, _ := strings.Cut(stack.SMTPAddr, ":")
	g := &gatewaySetup{bin: bin, dir: dir, config: cfg, stack: stack,
		redisPrefix: "tgw-e2e-" + randomHex(6) + ":"}
	set := map[string]string{
		"IMAP_HOST": imapHost, "IMAP_PORT": imapPort, "IMAP_TLS": "none",
		"IMAP_USER": supportAddr, "IMAP_PASSWORD": stack.Password,
		"SMTP_HOST": smtpHost, "SMTP_PORT": smtpPort, "SMTP_TLS": "none", "SMTP_AUTH": "none",
		"SMTP_USER": "", "SMTP_PASSWORD": "",
		"REDIS_URL": "redis://" + stack.tools.redisAddr + "/0", "REDIS_PREFIX": g.redisPrefix,
	}
	// Nothing of the caller's own IMAP_*, SMTP_* or REDIS_* settings leaks in.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "IMAP_") && !strings.HasPrefix(k, "SMTP_") && !strings.HasPrefix(k, "REDIS_") {
			g.env = append(g.env, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		g.env = append(g.env, k+"="+set[k])
	}
	t.Cleanup(func() { dropRedisPrefix(t, stack.tools.redisAddr, g.redisPrefix) })
	return g
}

// gatewayProc is one running `gateway run`.
type gatewayProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	exitErr error
}

// start runs `gateway run -c CONFIG`; the process is killed at the end of
// the test if it is still running.
func (g *gatewaySetup) start(t *testing.T) *gatewayProc {
	t.Helper()
	g.runs++
	p := &gatewayProc{logPath: filepath.Join(g.dir, fmt.Sprintf("gateway-%d.log", g.runs)), done: make(chan struct{})}
	out, err := os.Create(p.logPath)
	if err != nil {
		t.Fatalf("create gateway log: %v", err)
	}
	defer out.Close()
	p.cmd = exec.Command(g.bin, "run", "-c", g.config, "--log-level", "debug")
	p.cmd.Env = g.env
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start the gateway: %v", err)
	}
	go func() { p.exitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() || *showLogs {
			t.Logf("---- gateway run %s (tail)\n%s", p.logPath, tail(p.log(), 60))
		}
	})
	return p
}

// log returns what the gateway has written so far.
func (p *gatewayProc) log() string {
	raw, _ := os.ReadFile(p.logPath)
	return string(raw)
}

// stop sends SIGTERM and expects a clean exit within limit; it returns how
// long the gateway took to stop.
func (p *gatewayProc) stop(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal the gateway: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("the gateway did not stop within %v of SIGTERM", limit)
	}
	took := time.Since(start)
	if p.exitErr != nil {
		t.Errorf("the gateway exited with %v after SIGTERM, want status 0", p.exitErr)
	}
	p.checkLog(t)
	return took
}

// kill ends the gateway with SIGKILL, as a crash or an OOM kill would.
func (p *gatewayProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill the gateway: %v", err)
	}
	<-p.done
	p.checkLog(t)
}

// checkLog fails the test on a data race report or a panic in the log.
func (p *gatewayProc) checkLog(t *testing.T) {
	t.Helper()
	log := p.log()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if i := strings.Index(log, bad); i >= 0 {
			t.Errorf("the gateway's log has %q:\n%s", bad, log[i:min(len(log), i+4000)])
		}
	}
}

// classifyResult is the part of `gateway classify --json --show-ack` the
// suite compares with what the running gateway sent.
type classifyResult struct {
	Contract      *string `json:"contract"`
	Category      string  `json:"category"`
	Priority      string  `json:"priority"`
	Received      string  `json:"received"`
	ResponseDue   *string `json:"response_due"`
	ResolutionDue *string `json:"resolution_due"`
	IMACDate      *string `json:"imac_date"`
	IMACQuotaUsed *int    `json:"imac_quota_used"`
	IMACQuota     *int    `json:"imac_quota"`
	Ack           bool    `json:"ack"`
	AckReason     *string `json:"ack_reason"`
	AckSubject    string  `json:"ack_subject"`
	AckText       string  `json:"ack_text"`
}

// classify runs `gateway classify --at AT --json --show-ack` on raw with
// the same configuration and environment as the running gateway.
func (g *gatewaySetup) classify(t *testing.T, raw []byte, at time.Time) classifyResult {
	t.Helper()
	f, err := os.CreateTemp(g.dir, "classify-*.eml")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(raw); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, "classify", "-c", g.config, "--at", at.Format(time.RFC3339), "--json", "--show-ack", f.Name())
	cmd.Env = g.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gateway classify: %v\n%s", err, stderr.String())
	}
	var res classifyResult
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("decode classify output %q: %v", stdout.String(), err)
	}
	return res
}

// ticketState is the part of `gateway tickets list --json` the suite reads.
type ticketState struct {
	ID            string    `json:"id"`
	Contract      string    `json:"contract"`
	Category      string    `json:"category"`
	Priority      string    `json:"priority"`
	Status        string    `json:"status"`
	MessageID     string    `json:"message_id"`
	Opened        time.Time `json:"opened"`
	ResponseDue   time.Time `json:"response_due"`
	ResolutionDue time.Time `json:"resolution_due"`
	FirstResponse time.Time `json:"first_response"`
	IMACDate      string    `json:"imac_date"`
	Requester     struct {
		Addr string `json:"addr"`
	} `json:"requester"`
}

// tickets runs `gateway tickets list --all --json`: every ticket in the
// gateway's Redis, by id.
func (g *gatewaySetup) tickets(t *testing.T) map[string]ticketState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, "tickets", "list", "-c", g.config, "--all", "--json")
	cmd.Env = g.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gateway tickets list: %v\n%s", err, stderr.String())
	}
	out := map[string]ticketState{}
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var ts ticketState
		if err := dec.Decode(&ts); err != nil {
			t.Fatalf("decode gateway tickets list: %v", err)
		}
		if _, dup := out[ts.ID]; dup {
			t.Errorf("gateway tickets list shows %s twice", ts.ID)
		}
		out[ts.ID] = ts
	}
	return out
}

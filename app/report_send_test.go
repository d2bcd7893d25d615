package app

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"golang.org/x/net/html"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/store"
)

// TestReportSend: `gateway report qbr --send` queues the review in the
// outbox once, for the contract's customer contacts with the account
// manager in copy, with the report page and its figures attached; a second
// run queues nothing.
func TestReportSend(t *testing.T) {
	rdb, prefix, url := testRedis(t)
	st := store.New(rdb, prefix)
	ctx := context.Background()
	env := map[string]string{"REDIS_URL": url, "REDIS_PREFIX": prefix}
	cfg, err := rules.Load(exampleConfig, rules.LoadOptions{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demo.SeedHistory(ctx, st, cfg.ContractByID("acme")); err != nil {
		t.Fatal(err)
	}
	args := []string{"report", "qbr", "-c", exampleConfig, "--contract", "acme", "--quarter", "2026-Q3", "--as-of", "2026-10-04T08:00", "--send"}

	r := runMain(t, env, args...)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, %d bytes on stdout, stderr:\n%s", r.code, len(r.stdout), r.stderr)
	}
	if want := "acme 2026-Q3: queued for it-manager@acme.co.il, dana@northwind-it.example (outbox key qbr:acme:2026-Q3)"; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
	}
	depth := func() int64 {
		t.Helper()
		n, _, err := st.OutboxDepth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := depth(); n != 1 {
		t.Fatalf("outbox holds %d mails, want 1", n)
	}

	// Again: nothing more is queued.
	r = runMain(t, env, args...)
	if r.code != 0 || !strings.Contains(r.stderr, "acme 2026-Q3: already queued or sent (outbox key qbr:acme:2026-Q3): not queued again") {
		t.Errorf("second run: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := depth(); n != 1 {
		t.Fatalf("after a second run the outbox holds %d mails, want 1", n)
	}

	// The mail as the outbox sender will send it.
	es, err := st.ClaimOutbox(ctx, testNow.Add(time.Hour), time.Millisecond, 10)
	if err != nil || len(es) != 1 {
		t.Fatalf("claim: %d entries, %v", len(es), err)
	}
	e := es[0]
	if e.Key != "qbr:acme:2026-Q3" || e.From != "support@northwind-it.example" ||
		strings.Join(e.To, " ") != "it-manager@acme.co.il dana@northwind-it.example" {
		t.Errorf("entry %s from %s to %v", e.Key, e.From, e.To)
	}
	mr, err := mail.CreateReader(bytes.NewReader(e.Raw))
	if err != nil {
		t.Fatal(err)
	}
	to, _ := mr.Header.AddressList("To")
	cc, _ := mr.Header.AddressList("Cc")
	if len(to) != 1 || to[0].Address != "it-manager@acme.co.il" || len(cc) != 1 || cc[0].Address != "dana@northwind-it.example" {
		t.Errorf("To %v, Cc %v", to, cc)
	}
	if subject, _ := mr.Header.Subject(); !strings.Contains(subject, "סקירת שירות רבעונית") || !strings.Contains(subject, "ACME Ltd") {
		t.Errorf("subject %q", subject)
	}
	files := map[string][]byte{}
	var note string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		switch h := p.Header.(type) {
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			files[name] = body
		case *mail.InlineHeader:
			if mt, _, _ := h.ContentType(); mt == "text/plain" {
				note = string(body)
			}
		}
	}
	if !strings.Contains(note, "מצורפת הסקירה הרבעונית") || !strings.Contains(note, "qbr-acme-2026-Q3.csv") {
		t.Errorf("the note does not say what is attached:\n%s", note)
	}
	page := files["qbr-acme-2026-Q3.html"]
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("attached page: %v", err)
	}
	var text strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			text.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !strings.Contains(text.String(), "חזרו לטווח הנורמלי החל מ־30 באוגוסט") {
		t.Error("the attached page lacks the episode after the mail move")
	}
	if csv := files["qbr-acme-2026-Q3.csv"]; !bytes.HasPrefix(csv, []byte("section,label,metric,value")) {
		t.Errorf("attached CSV starts %q", csv[:min(len(csv), 40)])
	}
}

// TestReportSendAll: with --all, a contract nobody can receive is reported
// and the command fails after mailing the others.
func TestReportSendAll(t *testing.T) {
	rdb, prefix, url := testRedis(t)
	st := store.New(rdb, prefix)
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	// globex without its representative and contacts.
	yaml := strings.Replace(strings.Replace(string(data),
		"    representative: sam@northwind-it.example\n", "", 1),
		"    customer_contacts: [cio@globex.example]\n", "", 1)
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := runMain(t, map[string]string{"REDIS_URL": url, "REDIS_PREFIX": prefix},
		"report", "qbr", "-c", cfgPath, "--all", "--quarter", "2026-Q3", "-o", dir, "--send")
	if r.code != 1 || !strings.Contains(r.stderr, "globex 2026-Q3: not mailed") ||
		!strings.Contains(r.stderr, "acme 2026-Q3: queued for it-manager@acme.co.il, dana@northwind-it.example") ||
		!strings.Contains(r.stderr, "not mailed, for want of a representative or customer_contacts: globex") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	for _, f := range []string{"qbr-acme-2026-Q3.html", "qbr-globex-2026-Q3.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("report not written: %v", err)
		}
	}
	if n, _, err := st.OutboxDepth(context.Background()); err != nil || n != 1 {
		t.Errorf("outbox holds %d mails (%v), want acme's", n, err)
	}
}

package harness

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/examples"
)

// Mail is one synthetic customer message.
type Mail struct {
	MessageID string // without angle brackets
	From      string
	Raw       []byte
}

// template is a real-looking customer message whose sender, Message-ID and
// Date are rewritten for every copy.
type template struct {
	name   string
	domain string // the customer's domain: it selects the contract
	raw    []byte
}

// Generator makes distinct customer messages from a fixed rotation of
// templates: per four messages, two copies of ingest's ~21 KB Outlook-like
// fault (acme, Hebrew and English quoted-printable text and HTML and a PDF),
// one small windows-1255 Hebrew fault (acme) and one English request with an
// HTML alternative (globex). IMACs are left out on purpose: acme's monthly
// quota would push thousands of them past the scheduling horizon, which is
// a property of the contract, not of the gateway's speed.
type Generator struct {
	run       string // distinguishes runs in Message-IDs and senders
	templates []template
}

// TypicalPath is the ~21 KB message of ingest's parse benchmark, relative to
// the module root.
const TypicalPath = "ingest/testdata/bench/typical.eml"

// NewGenerator loads the templates; root is the module root. run is a short
// token that makes the Message-IDs of this run unique.
func NewGenerator(root, run string) (*Generator, error) {
	typical, err := os.ReadFile(filepath.Join(root, TypicalPath))
	if err != nil {
		return nil, fmt.Errorf("read typical message: %w", err)
	}
	hebrew, err := fs.ReadFile(examples.FS, "messages/fault-hebrew-windows-1255.eml")
	if err != nil {
		return nil, fmt.Errorf("read example message: %w", err)
	}
	english, err := fs.ReadFile(examples.FS, "messages/request-english.eml")
	if err != nil {
		return nil, fmt.Errorf("read example message: %w", err)
	}
	return &Generator{run: run, templates: []template{
		{name: "typical", domain: "acme.co.il", raw: typical},
		{name: "hebrew-fault", domain: "acme.co.il", raw: hebrew},
		{name: "typical", domain: "acme.co.il", raw: typical},
		{name: "english-request", domain: "globex.example", raw: english},
	}}, nil
}

// Mail returns message i: sender bench-<i>@<domain> (a distinct sender per
// message), a unique Message-ID and a Date of now.
func (g *Generator) Mail(i int, now time.Time) (Mail, error) {
	t := g.templates[i%len(g.templates)]
	from := fmt.Sprintf("bench-%s-%05d@%s", g.run, i, t.domain)
	id := fmt.Sprintf("bench-%s-%05d.%s@%s", g.run, i, t.name, t.domain)
	raw, err := RewriteHeaders(t.raw, map[string]string{
		"From":       "Bench Customer " + fmt.Sprint(i) + " <" + from + ">",
		"Message-ID": "<" + id + ">",
		"Date":       now.Format(time.RFC1123Z),
	})
	if err != nil {
		return Mail{}, fmt.Errorf("message %d from %s: %w", i, t.name, err)
	}
	return Mail{MessageID: id, From: from, Raw: raw}, nil
}

// RewriteHeaders replaces the value of each named top-level header field
// (with its folded continuation lines) and keeps everything else byte for
// byte, line endings included. A field in set that the header lacks is an
// error, so that a changed template cannot silently keep its original
// sender or Message-ID.
func RewriteHeaders(raw []byte, set map[string]string) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(raw) + 128)
	done := make(map[string]bool, len(set))
	rest := raw
	skipping := false // inside the continuation lines of a replaced field
	for len(rest) > 0 {
		end := bytes.IndexByte(rest, '\n')
		var line []byte
		if end < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:end+1], rest[end+1:]
		}
		body := bytes.TrimRight(line, "\r\n")
		if len(body) == 0 { // the blank line: the body follows unchanged
			out.Write(line)
			out.Write(rest)
			break
		}
		if body[0] == ' ' || body[0] == '\t' {
			if !skipping {
				out.Write(line)
			}
			continue
		}
		skipping = false
		colon := bytes.IndexByte(body, ':')
		if colon <= 0 {
			return nil, fmt.Errorf("header line without a field name: %q", body)
		}
		name := string(body[:colon])
		key, v, ok := lookupFold(set, name)
		if !ok {
			out.Write(line)
			continue
		}
		if done[key] {
			skipping = true // a second occurrence is dropped
			continue
		}
		done[key] = true
		skipping = true
		eol := line[len(body):]
		out.WriteString(name + ": " + v)
		out.Write(eol)
	}
	for k := range set {
		if !done[k] {
			return nil, fmt.Errorf("header %s not found", k)
		}
	}
	return out.Bytes(), nil
}

// lookupFold finds name in set ignoring case.
func lookupFold(set map[string]string, name string) (string, string, bool) {
	for k, v := range set {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", "", false
}

package ingest

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/northwind-it/ticketgw/domain"
)

// parseCorpusRoot is the shared real-world mail corpus, relative to the
// package directory.
const parseCorpusRoot = "../../shared/corpus"

// parseCorpusDir returns a corpus folder, skipping the test when the corpus
// is not checked out next to the repository.
func parseCorpusDir(t testing.TB, folder string) string {
	t.Helper()
	dir := filepath.Join(parseCorpusRoot, folder)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("corpus folder %s not available: %v", dir, err)
	}
	return dir
}

// parseCorpusFiles returns the messages of a corpus folder (not its
// manifests and notes).
func parseCorpusFiles(t testing.TB, folder string) []string {
	t.Helper()
	dir := parseCorpusDir(t, folder)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		switch ext := filepath.Ext(e.Name()); {
		case e.IsDir(), ext == ".md", ext == ".tsv":
			continue
		}
		files = append(files, filepath.Join(dir, e.Name()))
	}
	if len(files) == 0 {
		t.Fatalf("no messages in %s", dir)
	}
	return files
}

func parseCorpusFile(t testing.TB, path string) *domain.Message {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := Parse(bytes.NewReader(raw), DefaultLimits())
	parseCheckInvariants(t, path, raw, m)
	return m
}

// parseCheckInvariants asserts what must hold for any input.
func parseCheckInvariants(t testing.TB, name string, raw []byte, m *domain.Message) {
	t.Helper()
	if m == nil {
		t.Fatalf("%s: Parse returned nil", name)
	}
	for _, w := range m.Warnings {
		if strings.HasPrefix(w, "internal error") {
			t.Errorf("%s: %s", name, w)
		}
	}
	check := func(field, s string) {
		if !utf8.ValidString(s) {
			t.Errorf("%s: %s is not valid UTF-8: %q", name, field, s)
		}
	}
	check("Text", m.Text)
	check("HTML", m.HTML)
	check("Subject", m.Subject)
	check("From.Name", m.From.Name)
	for _, h := range m.Headers {
		check("header "+h.Name, h.Value)
	}
	for _, a := range m.Attachments {
		check("attachment name", a.Name)
		if a.Size < 0 {
			t.Errorf("%s: attachment %q has size %d", name, a.Name, a.Size)
		}
	}
	if m.Size != int64(len(raw)) {
		t.Errorf("%s: Size = %d, want %d", name, m.Size, len(raw))
	}
	if len(m.Text) > DefaultLimits().MaxTextBytes || len(m.HTML) > DefaultLimits().MaxTextBytes {
		t.Errorf("%s: text %d / html %d bytes exceed the limit", name, len(m.Text), len(m.HTML))
	}
	if (m.Auto == domain.Human) != (m.AutoWhy == "") {
		t.Errorf("%s: Auto %q with AutoWhy %q", name, m.Auto, m.AutoWhy)
	}
	if m.TextFromHTML && m.Text == "" {
		t.Errorf("%s: TextFromHTML without text", name)
	}
}

// TestParseCorpusAll parses every message of every corpus folder: no panic,
// the invariants hold, and the folders' totals are what we expect.
func TestParseCorpusAll(t *testing.T) {
	total := 0
	for _, folder := range []string{"plain", "charsets", "mime-edge", "autoreply", "bounces", "lists"} {
		t.Run(folder, func(t *testing.T) {
			for _, f := range parseCorpusFiles(t, folder) {
				parseCorpusFile(t, f)
				total++
			}
		})
	}
	t.Logf("parsed %d corpus messages", total)
}

// parsePlainWithoutText lists the plain/ messages that have no text to
// show: an image or an encrypted blob is all they carry.
var parsePlainWithoutText = map[string]string{
	"flanker-outlook-express.eml":       "a lone application/octet-stream attachment",
	"mimekit-jwz-content-length-21.eml": "S/MIME encrypted (application/x-pkcs7-mime)",
	"stalwart-legacy-000.eml":           "a lone image/png",
	"stalwart-legacy-006.eml":           "two image/png attachments",
	"stalwart-legacy-037.eml":           "an empty text/plain part and an image",
	"stalwart-thirdparty-011.eml":       "an empty text/plain part and an HTML part holding only an image",
}

// TestParseCorpusPlain checks ordinary mail from many clients: a sender, a
// subject and (except for the listed attachment-only messages) text, and no
// automatic-mail verdict for person-to-person mail.
func TestParseCorpusPlain(t *testing.T) {
	for _, f := range parseCorpusFiles(t, "plain") {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			m := parseCorpusFile(t, f)
			if !strings.Contains(m.From.Addr, "@") {
				t.Errorf("From = %+v", m.From)
			}
			if m.Subject == "" {
				t.Error("Subject is empty")
			}
			if _, ok := m.Header("Message-ID"); ok && m.MessageID == "" {
				t.Error("MessageID is empty")
			}
			_, noText := parsePlainWithoutText[name]
			if noText && strings.TrimSpace(m.Text) != "" {
				t.Errorf("listed as without text, got %q", m.Text)
			}
			if !noText && strings.TrimSpace(m.Text) == "" {
				t.Errorf("Text is empty (attachments %+v, warnings %q)", m.Attachments, m.Warnings)
			}
			if m.Auto != domain.Human && m.Auto != domain.List {
				t.Errorf("Auto = %q (%s) for person-to-person mail", m.Auto, m.AutoWhy)
			}
		})
	}
}

// TestParseCorpusThreads checks the threading headers of the lists/ corpus
// against threads.tsv (Message-ID, In-Reply-To, number of References).
func TestParseCorpusThreads(t *testing.T) {
	dir := parseCorpusDir(t, "lists")
	f, err := os.Open(filepath.Join(dir, "threads.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	rows := 0
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 5 || c[0] == "file" {
			continue
		}
		rows++
		m := parseCorpusFile(t, filepath.Join(dir, c[0]))
		if want := strings.Trim(c[2], "<>"); m.MessageID != want {
			t.Errorf("%s: MessageID = %q, want %q", c[0], m.MessageID, want)
		}
		// The column holds the raw In-Reply-To without its outer angle
		// brackets, comments included; the id is what stood inside them.
		want := c[3]
		if i := strings.LastIndexByte(want, '<'); i >= 0 {
			want = want[i+1:]
		}
		want, _, _ = strings.Cut(want, ">")
		if got := strings.Join(m.InReplyTo, " "); got != want {
			t.Errorf("%s: InReplyTo = %q, want %q", c[0], got, want)
		}
		if got := len(m.References); strings.TrimSpace(c[4]) != "" && c[4] != strconv.Itoa(got) {
			t.Errorf("%s: %d References, want %s", c[0], got, c[4])
		}
	}
	if rows == 0 {
		t.Fatal("threads.tsv has no rows")
	}
}

package app

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corpusRoot is the shared real-world mail corpus (read-only, never copied
// into the repository).
const corpusRoot = "../../shared/corpus"

// corpusEnv satisfies the ${IMAP_PASSWORD} of the corpus configurations.
var corpusEnv = map[string]string{"IMAP_PASSWORD": "s3cret"}

// automaticReasons are the ack_reason values of automatic mail (SPEC §6).
var automaticReasons = []string{"auto-reply", "bounce", "list", "noreply"}

func corpusDir(t *testing.T, folder string) string {
	t.Helper()
	dir := filepath.Join(corpusRoot, folder)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("corpus folder %s not available: %v", dir, err)
	}
	return dir
}

// corpusFiles lists the messages of a corpus folder (not its manifests and
// notes).
func corpusFiles(t *testing.T, folder string) []string {
	t.Helper()
	dir := corpusDir(t, folder)
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

// readManifest returns file → expected_kind of a corpus manifest.tsv.
func readManifest(t *testing.T, folder string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir(t, folder), "manifest.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kinds := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 2 || cols[0] == "file" {
			continue
		}
		kinds[filepath.Join(corpusDir(t, folder), cols[0])] = cols[1]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(kinds) == 0 {
		t.Fatalf("%s/manifest.tsv has no rows", folder)
	}
	return kinds
}

// classifyFiles runs `classify --json --show-ack` once on files and returns
// the JSON line of each file. It fails the test unless every file got
// exactly one valid line and the command succeeded.
func classifyFiles(t *testing.T, config string, files []string) map[string]jsonLine {
	t.Helper()
	args := append([]string{"classify", "-c", config, "--json", "--show-ack", "--at", "2026-11-30T09:30"}, files...)
	r := runMain(t, corpusEnv, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
	}
	lines := parseJSONLines(t, r.stdout)
	byFile := map[string]jsonLine{}
	for _, l := range lines {
		byFile[l["file"]] = l
	}
	if len(lines) != len(files) || len(byFile) != len(files) {
		t.Fatalf("%d JSON lines for %d files", len(lines), len(files))
	}
	return byFile
}

// TestCorpusAutomaticMail runs every message of the autoreply and bounces
// manifests through `classify --json`: automatic mail (autoreply, bounce,
// list) is never acknowledged and says why with an automatic-mail reason,
// and no human message gets such a reason. Human mail from an unknown sender
// is a ticket under this configuration, so it also exercises rendering the
// acknowledgement of a ticket without a contract.
//
// The same files under corpus-masking.yaml, where unknown senders are
// ignored and a rule turns every acknowledgement off, must report the same
// automatic reasons: the automatic-mail check comes before every other
// reason (SPEC §6).
func TestCorpusAutomaticMail(t *testing.T) {
	for _, folder := range []string{"autoreply", "bounces"} {
		t.Run(folder, func(t *testing.T) {
			kinds := readManifest(t, folder)
			files := make([]string, 0, len(kinds))
			for f := range kinds {
				files = append(files, f)
			}
			slices.Sort(files)
			got := classifyFiles(t, "testdata/corpus.yaml", files)
			masked := classifyFiles(t, "testdata/corpus-masking.yaml", files)
			counts := map[string]int{}
			for _, f := range files {
				l, kind := got[f], kinds[f]
				name := filepath.Base(f)
				counts[kind+" → "+l["ack_reason"]]++
				automatic := slices.Contains(automaticReasons, l["ack_reason"])
				switch kind {
				case "autoreply", "bounce", "list":
					if l["ack"] != "false" || !automatic {
						t.Errorf("%s (%s): ack %s, ack_reason %q; want false with one of %v", name, kind, l["ack"], l["ack_reason"], automaticReasons)
					}
					if l["auto_evidence"] == "" {
						t.Errorf("%s (%s): no auto_evidence", name, kind)
					}
					if m := masked[f]; m["ack_reason"] != l["ack_reason"] {
						t.Errorf("%s (%s): ack_reason %q under corpus-masking.yaml, %q under corpus.yaml", name, kind, m["ack_reason"], l["ack_reason"])
					}
				case "human":
					if automatic {
						t.Errorf("%s (human): ack_reason %q (%s)", name, l["ack_reason"], l["auto_evidence"])
					}
					if l["ack"] != "true" || l["ack_text"] == "" {
						t.Errorf("%s (human, unknown_senders: ticket): ack %s, ack_reason %q, acknowledgement %q; want one", name, l["ack"], l["ack_reason"], l["ack_text"])
					}
				default:
					t.Fatalf("%s: unknown expected_kind %q", name, kind)
				}
			}
			t.Logf("%s: %v", folder, counts)
		})
	}
}

// TestCorpusEveryFolder runs every message of every corpus folder through
// `classify --json --show-ack`, once per folder: the command succeeds and
// prints one valid JSON object per message (no panic, whatever the MIME).
func TestCorpusEveryFolder(t *testing.T) {
	entries, err := os.ReadDir(corpusDir(t, "."))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			files := corpusFiles(t, e.Name())
			lines := classifyFiles(t, "testdata/corpus.yaml", files)
			for f, l := range lines {
				if l["category"] == "" || l["received"] == "" || (l["ack"] != "true" && l["ack"] != "false") {
					t.Errorf("%s: incomplete line %v", filepath.Base(f), l)
				}
				if (l["ack"] == "true") != (l["ack_reason"] == "") {
					t.Errorf("%s: ack %s with ack_reason %q", filepath.Base(f), l["ack"], l["ack_reason"])
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no corpus folders")
	}
}

package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestHTMLToTextGolden renders testdata/html/*.html and compares with the
// .txt golden files (refresh with: go test ./ingest -run HTMLToTextGolden -update).
func TestHTMLToTextGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "html", "*.html"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := htmlToText(string(src), 1<<20) + "\n"
			golden := strings.TrimSuffix(f, ".html") + ".txt"
			if parseUpdate() {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("rendering differs from %s\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain words collapse", "  a \n\t b  ", "a b"},
		{"br", "one<br>two<br/><br>three", "one\ntwo\n\nthree"},
		{"paragraphs", "<p>a</p><p>b</p>", "a\n\nb"},
		{"entities", "&lt;x&gt; &amp; &quot;q&quot; caf&eacute; &#1488;", `<x> & "q" café א`},
		{"nbsp collapses", "a&nbsp;&nbsp;b", "a b"},
		{"script and style skipped", "<style>p{}</style><script>var x=1</script>text", "text"},
		{"head skipped", "<head><title>T</title></head><body>B</body>", "B"},
		{"unclosed head ends at body", "<head><meta charset=utf-8><body>B", "B"},
		{"unclosed head ends at content", "<html><head><title>T</title><style>p{}</style><p>text", "text"},
		{"unclosed head ends at text", "<head><meta charset=utf-8>Hello <b>you</b>", "Hello you"},
		{"office tags in head", "<head><o:OfficeDocumentSettings><o:AllowPNG/></o:OfficeDocumentSettings></head>B", "B"},
		{"link differs", `<a href="https://x.example/a">click</a>`, "click (https://x.example/a)"},
		{"link same as text", `<a href="https://x.example/">x.example</a>`, "x.example"},
		{"mailto same", `<a href="mailto:a@b.c">a@b.c</a>`, "a@b.c"},
		{"mailto differs", `<a href="mailto:a@b.c">Anna</a>`, "Anna (a@b.c)"},
		{"anchor link", `<a href="#x">top</a>`, "top"},
		{"image link without text", `<a href="https://t.example/"><img src="x.png"></a>after`, "after"},
		{"unordered list", "<ul><li>a</li><li>b</li></ul>", "- a\n- b"},
		{"ordered list", "<ol><li>a</li><li>b</li></ol>", "1. a\n2. b"},
		{"blockquote", "<p>me</p><blockquote>you<br>again</blockquote>", "me\n\n> you\n> again"},
		{"table cells", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
		{"pre keeps spaces", "<pre>a  b\n  c</pre>", "a  b\n  c"},
		{"inline tags join", "a<b>b</b><i>c</i> d", "abc d"},
		{"hebrew", "<p dir=rtl>שלום <b>עולם</b></p>", "שלום עולם"},
		{"comment skipped", "a<!-- hidden -->b", "ab"},
		{"unterminated tag", "a <b", "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := htmlToText(tc.in, 1<<20); got != tc.want {
				t.Errorf("htmlToText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestHTMLToTextLimit(t *testing.T) {
	src := strings.Repeat("<p>שלום עולם</p>", 10000)
	got := htmlToText(src, 1000)
	if len(got) > 1000 {
		t.Fatalf("len = %d, want <= 1000", len(got))
	}
	if !utf8.ValidString(got) {
		t.Fatal("truncated text is not valid UTF-8")
	}
}

func TestParseHTMLMetaCharset(t *testing.T) {
	tests := map[string]string{
		`<meta charset="windows-1255">`:                                              "windows-1255",
		`<META http-equiv="Content-Type" content="text/html; charset=iso-8859-8-i">`: "iso-8859-8-i",
		`<p>no meta</p>`: "",
	}
	for in, want := range tests {
		if got := parseHTMLMetaCharset([]byte(in)); got != want {
			t.Errorf("parseHTMLMetaCharset(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzHTMLToText(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "html", "*.html"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("<ol><li><blockquote><pre>x\n</pre></blockquote></li></ol><a href=x>")
	f.Fuzz(func(t *testing.T, src string) {
		got := htmlToText(src, 4096)
		if len(got) > 4096 {
			t.Fatalf("output of %d bytes exceeds the limit", len(got))
		}
		if !utf8.ValidString(got) {
			t.Fatalf("output is not valid UTF-8: %q", got)
		}
	})
}

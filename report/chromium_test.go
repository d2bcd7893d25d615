package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestChromiumRender prints the golden reports with headless Chromium to
// PNG and PDF when /usr/bin/chromium exists (skipped otherwise). With
// -update the PNGs are saved as samples in ../docs/.
func TestChromiumRender(t *testing.T) {
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no %s: .ci/run installs it (apt-get install chromium fonts-noto-core)", chromium)
		}
		t.Skip("no " + chromium)
	}
	for _, s := range []scenario{scenarios[0], scenarios[2]} {
		t.Run(s.name, func(t *testing.T) {
			r, _, _ := s.build(t)
			dir := t.TempDir()
			page := filepath.Join(dir, s.name+".html")
			var b bytes.Buffer
			if err := RenderHTML(&b, r, s.lang); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			png, pdf := filepath.Join(dir, s.name+".png"), filepath.Join(dir, s.name+".pdf")
			run := func(extra ...string) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
					"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile")},
					extra...)
				args = append(args, "file://"+page)
				if out, err := exec.CommandContext(ctx, chromium, args...).CombinedOutput(); err != nil {
					t.Fatalf("chromium %v: %v\n%s", extra, err, out)
				}
			}
			run("--screenshot="+png, "--window-size=900,4200", "--hide-scrollbars")
			run("--print-to-pdf="+pdf, "--no-pdf-header-footer")
			pngBytes, err := os.ReadFile(png)
			if err != nil || !bytes.HasPrefix(pngBytes, []byte("\x89PNG")) {
				t.Fatalf("no PNG written: %v", err)
			}
			pdfBytes, err := os.ReadFile(pdf)
			if err != nil || !bytes.HasPrefix(pdfBytes, []byte("%PDF")) {
				t.Fatalf("no PDF written: %v", err)
			}
			// A4 is 595 × 842 points.
			if !bytes.Contains(pdfBytes, []byte("/MediaBox [0 0 594.95996 841.91998]")) && !bytes.Contains(pdfBytes, []byte("/MediaBox [0 0 595")) {
				t.Errorf("PDF pages are not A4")
			}
			if *update {
				if err := os.WriteFile(filepath.Join("..", "docs", "qbr-"+s.name+".png"), pngBytes, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

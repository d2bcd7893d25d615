package ingest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
)

// autoManifestKinds maps the expected_kind column of the corpus manifests.
var autoManifestKinds = map[string]domain.AutoKind{
	"autoreply": domain.AutoReply,
	"bounce":    domain.Bounce,
	"list":      domain.List,
	"human":     domain.Human,
}

// TestAutoCorpusManifests checks every row of autoreply/manifest.tsv and
// bounces/manifest.tsv: the verdict must be exactly the expected kind.
func TestAutoCorpusManifests(t *testing.T) {
	for _, folder := range []string{"autoreply", "bounces"} {
		t.Run(folder, func(t *testing.T) {
			dir := parseCorpusDir(t, folder)
			f, err := os.Open(filepath.Join(dir, "manifest.tsv"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			counts := map[domain.AutoKind]int{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				cols := strings.Split(sc.Text(), "\t")
				if len(cols) < 2 || cols[0] == "file" {
					continue
				}
				want, ok := autoManifestKinds[cols[1]]
				if !ok {
					t.Fatalf("%s: unknown expected_kind %q", cols[0], cols[1])
				}
				m := parseCorpusFile(t, filepath.Join(dir, cols[0]))
				counts[want]++
				if m.Auto != want {
					t.Errorf("%s: Auto = %q (%s), want %q; manifest evidence: %s", cols[0], m.Auto, m.AutoWhy, want, parseCol(cols, 2))
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if len(counts) == 0 {
				t.Fatal("manifest has no rows")
			}
			t.Logf("%s: %v", folder, counts)
		})
	}
}

func parseCol(cols []string, i int) string {
	if i < len(cols) {
		return cols[i]
	}
	return ""
}

// TestAutoCorpusLists checks that all list traffic reads "list".
func TestAutoCorpusLists(t *testing.T) {
	for _, f := range parseCorpusFiles(t, "lists") {
		m := parseCorpusFile(t, f)
		if m.Auto != domain.List {
			t.Errorf("%s: Auto = %q (%s), want list", filepath.Base(f), m.Auto, m.AutoWhy)
		}
	}
}

// TestAutoClassify covers each row of the decision table with synthetic
// messages, including Hebrew forms built from the English patterns.
func TestAutoClassify(t *testing.T) {
	dsn := func(extra ...string) string {
		return parseTestMsg(append(append([]string{"From: Mail Delivery System <MAILER-DAEMON@mx.example>"}, extra...),
			"Content-Type: multipart/report; report-type=delivery-status; boundary=r", "",
			"--r", "", "Your message could not be delivered.", "--r",
			"Content-Type: message/delivery-status", "", "Reporting-MTA: dns; mx.example", "",
			"Final-Recipient: rfc822; x@y.example", "Action: failed", "Status: 5.1.1", "--r--")...)
	}
	tests := []struct {
		name    string
		raw     string
		want    domain.AutoKind
		whyPart string
	}{
		{"human", parseTestMsg("From: dana@acme.co.il", "Subject: printer", "", "hi"), domain.Human, ""},
		{"delivery status report", dsn(), domain.Bounce, "report-type=delivery-status"},
		{"bounce beats auto-replied and list", dsn("Auto-Submitted: auto-replied", "List-Id: <l.example>"), domain.Bounce, "delivery-status"},
		{"dsn part without report type", parseTestMsg("From: postmaster@mx.example", "Content-Type: multipart/mixed; boundary=r", "",
			"--r", "Content-Type: message/delivery-status", "", "Action: failed", "--r--"), domain.Bounce, "message/delivery-status part"},
		{"feedback report", parseTestMsg("From: abuse@isp.example", "Content-Type: multipart/report; report-type=feedback-report; boundary=r", "", "--r", "", "x", "--r--"), domain.Bounce, "feedback-report"},
		{"x-failed-recipients", parseTestMsg("From: a@b.example", "X-Failed-Recipients: gone@x.example", "", "x"), domain.Bounce, "X-Failed-Recipients"},
		{"daemon with failure text", parseTestMsg("From: MAILER-DAEMON@mx.example", "Subject: failure notice", "", "Sorry, I wasn't able to deliver: 550 5.1.1 user unknown"), domain.Bounce, "MAILER-DAEMON"},
		{"postmaster with returned message", parseTestMsg("From: System Administrator <postmaster@corp.example>", "Subject: Undeliverable: hi",
			"Content-Type: multipart/mixed; boundary=r", "", "--r", "", "Your message did not reach some recipients.", "--r",
			"Content-Type: message/rfc822", "", "From: me@x.example", "", "hi", "--r--"), domain.Bounce, "returned message attached"},
		{"null return path with failure subject", parseTestMsg("Return-Path: <>", "From: mail@mx.example", "Subject: Undelivered Mail Returned to Sender", "", "see attached"), domain.Bounce, "Return-Path: <>"},
		{"hebrew bounce subject", parseTestMsg("From: postmaster@mx.example", "Subject: =?utf-8?b?15zXkCDXoNeZ16rXnyDXnNee16HXldeo?=: hi", "", "x"), domain.Bounce, "Subject"},
		{"no-reply sender of a bounce", parseTestMsg("From: no-reply@mx.example", "Subject: x", "", "Could not be delivered to: <a@b.example>"), domain.Bounce, "no-reply"},
		{"phishing imitation posted to a list", parseTestMsg("From: Mail Delivery System <mailer-daemon@evil.example>", "Subject: Undeliverable: Outgoing mail failed",
			"List-Id: <dev.lists.example>", "Content-Type: text/html", "", "<p>You have 3 pending messages. <a href=x>Review</a></p>"), domain.List, "List-Id"},
		{"list server refusing a post", parseTestMsg("From: list-admin@lists.example", "Mailing-List: contact help@lists.example; run by ezmlm", "Subject: You are not member", "", "You are not a member of this list."), domain.Bounce, "refused"},
		{"auto-replied", parseTestMsg("From: a@b.example", "Auto-Submitted: auto-replied", "List-Id: <l.example>", "", "away"), domain.AutoReply, "Auto-Submitted: auto-replied"},
		{"read receipt", parseTestMsg("From: a@b.example", "Content-Type: multipart/report; report-type=disposition-notification; boundary=r", "", "--r", "", "read", "--r--"), domain.AutoReply, "read receipt"},
		{"challenge-response diagnostic", parseTestMsg("From: noreply@cr.example", "Content-Type: multipart/report; report-type=delivery-status; boundary=r", "",
			"--r", "", "Your message was waitlisted.", "--r", "Content-Type: message/delivery-status", "",
			"Action: failed", "Diagnostic-Code: X-Notice; Sender not pre-approved", "Status: 4.7.0", "--r--"), domain.AutoReply, "challenge-response"},
		{"x-autoreply", parseTestMsg("From: a@b.example", "X-Autoreply: yes", "", "x"), domain.AutoReply, "X-Autoreply"},
		{"x-autorespond", parseTestMsg("From: a@b.example", "X-Autorespond: Vacation", "", "x"), domain.AutoReply, "X-Autorespond"},
		{"x-autoreply no", parseTestMsg("From: a@b.example", "X-Autoreply: no", "", "x"), domain.Human, ""},
		{"precedence auto_reply", parseTestMsg("From: a@b.example", "Precedence: auto_reply", "", "x"), domain.AutoReply, "Precedence: auto_reply"},
		{"apple vacation", parseTestMsg("From: a@b.example", "X-Apple-Action: VACATION", "", "x"), domain.AutoReply, "X-Apple-Action"},
		{"outlook automatic reply", parseTestMsg("From: a@b.example", "Subject: Automatic reply: printer", "", "x"), domain.AutoReply, "Subject"},
		{"exchange out of office", parseTestMsg("From: a@b.example", "Subject: Out of Office: printer", "X-Auto-Response-Suppress: All", "", "x"), domain.AutoReply, "Subject"},
		{"hebrew automatic reply", parseTestMsg("From: a@b.example", "Subject: =?utf-8?b?157Xoteg15Qg15DXldeY15XXnteY15k=?=: printer", "", "x"), domain.AutoReply, "Subject"},
		{"hebrew out of office", parseTestMsg("From: a@b.example", "Subject: =?windows-1255?b?7ufl9SDs7vn44w==?=: printer", "", "x"), domain.AutoReply, "Subject"},
		{"null return path only", parseTestMsg("Return-Path: <>", "From: a@b.example", "Subject: Thank you for your e-mail", "", "I will reply soon."), domain.AutoReply, "null sender"},
		{"list id", parseTestMsg("From: a@b.example", "List-Id: <dev.lists.example>", "", "x"), domain.List, "List-Id"},
		{"precedence bulk", parseTestMsg("From: a@b.example", "Precedence: bulk", "", "x"), domain.List, "Precedence: bulk"},
		{"precedence junk", parseTestMsg("From: a@b.example", "Precedence: junk", "", "x"), domain.List, "Precedence: junk"},
		{"auto-generated via list is list", parseTestMsg("From: bugzilla@b.example", "Auto-Submitted: auto-generated", "Precedence: list", "", "x"), domain.List, "Precedence"},
		{"auto-generated alone", parseTestMsg("From: monitor@b.example", "Auto-Submitted: auto-generated", "", "disk full"), domain.AutoReply, "auto-generated"},
		{"auto-submitted no", parseTestMsg("From: a@b.example", "Auto-Submitted: no", "", "x"), domain.Human, ""},
		{"noreply", parseTestMsg("From: Shop <noreply@shop.example>", "", "x"), domain.NoReply, "noreply@shop.example"},
		{"do-not-reply", parseTestMsg("From: do_not.reply+42@shop.example", "", "x"), domain.NoReply, "do_not.reply"},
		{"bare mailer-daemon", parseTestMsg("From: mailer-daemon", "", "x"), domain.NoReply, "mailer-daemon"},
		{"auto-response-suppress alone is human", parseTestMsg("From: a@b.example", "X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply", "", "x"), domain.Human, ""},
		{"list-unsubscribe alone is human", parseTestMsg("From: sales@b.example", "List-Unsubscribe: <mailto:u@b.example>", "", "x"), domain.Human, ""},
		{"inbox rules loop alone is human", parseTestMsg("From: a@b.example", "X-MS-Exchange-Inbox-Rules-Loop: a@b.example", "", "x"), domain.Human, ""},
		{"vacation in subject is human", parseTestMsg("From: a@b.example", "Subject: Re: vacation plans (ooo)", "", "x"), domain.Human, ""},
		{"out of office in prose is human", parseTestMsg("From: a@b.example", "Subject: printer out of office supplies", "", "x"), domain.Human, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := parseString(tc.raw)
			if m.Auto != tc.want {
				t.Fatalf("Auto = %q (%s), want %q", m.Auto, m.AutoWhy, tc.want)
			}
			if !strings.Contains(m.AutoWhy, tc.whyPart) {
				t.Errorf("AutoWhy = %q, want it to mention %q", m.AutoWhy, tc.whyPart)
			}
		})
	}
}

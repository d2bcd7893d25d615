package conversation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
)

// Header shapes below are those of the named servers (values unfolded as
// ingest delivers them: line breaks removed, folding white space kept).
const (
	staff = "avi@northwind-it.example"

	gmailAR = "mx.google.com;       dkim=pass header.i=@northwind-it.example header.s=google header.b=Qm9zCz1x;" +
		"       spf=pass (google.com: domain of avi@northwind-it.example designates 209.85.220.41 as permitted sender) smtp.mailfrom=avi@northwind-it.example;" +
		"       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=northwind-it.example"
	gmailDKIMOnly = "mx.google.com;       dkim=pass header.i=@northwind-it.example header.s=20230601 header.b=AbCdEfGh;" +
		"       spf=pass (google.com: domain of avi@northwind-it.example designates 2a00:1450:4864:20::62b as permitted sender) smtp.mailfrom=avi@northwind-it.example"
	m365AR = "spf=pass (sender IP is 40.107.22.58) smtp.mailfrom=northwind-it.example; dkim=pass (signature was verified)" +
		" header.d=northwind-it.example;dmarc=pass action=none header.from=northwind-it.example;compauth=pass reason=100"
	m365Weak = "spf=pass (sender IP is 40.107.22.58) smtp.mailfrom=northwind-it.example; dkim=none (message not signed)" +
		" header.d=none;dmarc=bestguesspass action=none header.from=northwind-it.example;compauth=pass reason=109"
	exchangeOnPrem = "exch01.northwind-it.example; dkim=none (message not signed) header.d=none;dmarc=none action=none header.from=northwind-it.example;"
	openDMARC      = "mail.northwind-it.example; dmarc=pass (p=reject dis=none) header.from=northwind-it.example"
	openDMARCNone  = "mail.northwind-it.example; dmarc=none (p=none dis=none) header.from=northwind-it.example"
	openDKIM       = "mail.northwind-it.example;\tdkim=pass (2048-bit key; unprotected) header.d=northwind-it.example header.i=@northwind-it.example" +
		" header.a=rsa-sha256 header.s=mail header.b=Xy12AbCd;\tdkim-atps=neutral"
	openDKIMFail = "mail.northwind-it.example;\tdkim=fail reason=\"signature verification failed\" (2048-bit key; unprotected)" +
		" header.d=northwind-it.example header.i=@northwind-it.example header.b=\"yDO+cGdB\";\tdkim-atps=neutral"
	fastmailAR = "mx6.messagingengine.com;    dkim=pass (2048-bit rsa key sha256) header.d=northwind-it.example header.i=@northwind-it.example" +
		" header.b=abcdEFGH header.a=rsa-sha256 header.s=fm1 x-bits=2048;    dmarc=pass policy.published-domain-policy=reject" +
		" policy.applied-disposition=none policy.evaluated-disposition=none (p=reject,d=none,d.eval=none) policy.policy-from=p" +
		" header.from=northwind-it.example;    iprev=pass smtp.remote-ip=66.111.4.25 (out1-smtp.messagingengine.com);" +
		"    spf=pass smtp.mailfrom=avi@northwind-it.example smtp.helo=out1-smtp.messagingengine.com;    x-aligned-from=pass (Address match);" +
		"    arc=none (no signatures);    x-me-sender=none"
	fastmailDMARCOnly = "mx6.messagingengine.com;    dkim=pass (2048-bit rsa key sha256) header.d=fm1.example header.i=@fm1.example" +
		" header.b=abcdEFGH header.a=rsa-sha256 header.s=fm1;    dmarc=pass policy.published-domain-policy=reject (p=reject,d=none,d.eval=none)" +
		" header.from=northwind-it.example"
	arcOldestPass = "mx.northwind-it.example; arc=pass (i=1) header.oldest-pass=0 smtp.remote-ip=203.0.113.9;" +
		" dkim=pass header.d=northwind-it.example header.s=sel"
)

func ar(v string) domain.HeaderField {
	return domain.HeaderField{Name: "Authentication-Results", Value: v}
}

func hf(name, v string) domain.HeaderField { return domain.HeaderField{Name: name, Value: v} }

func TestAuthenticated(t *testing.T) {
	received := hf("Received", "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com with SMTPS id x12sor; Mon, 30 Nov 2026 09:30:05 -0800 (PST)")
	tests := []struct {
		name    string
		headers []domain.HeaderField
		from    string
		trusted string
		ok      bool
		why     string // substring of why
	}{
		{"gmail", []domain.HeaderField{received, ar(gmailAR)}, staff, "mx.google.com", true, "dkim=pass header.d=northwind-it.example for northwind-it.example (Authentication-Results by mx.google.com)"},
		{"gmail, no trusted id", []domain.HeaderField{ar(gmailAR)}, staff, "", true, "dkim=pass"},
		{"gmail header.i only", []domain.HeaderField{ar(gmailDKIMOnly)}, staff, "mx.google.com", true, "header.d=northwind-it.example"},
		{"gmail, trusted id in other case", []domain.HeaderField{ar(gmailAR)}, staff, "MX.Google.COM", true, "dkim=pass"},
		{"microsoft 365 without authserv-id", []domain.HeaderField{ar(m365AR)}, staff, "", true, "dkim=pass header.d=northwind-it.example for northwind-it.example (Authentication-Results by a server without authserv-id)"},
		{"microsoft 365 cannot carry a trusted id", []domain.HeaderField{ar(m365AR)}, staff, "mx.northwind-it.example", false, "no Authentication-Results header from mx.northwind-it.example (found authserv-id (none))"},
		{"microsoft 365 compauth and bestguesspass are not enough", []domain.HeaderField{ar(m365Weak)}, staff, "", false, "dkim=none header.d=none, dmarc=bestguesspass header.from=northwind-it.example"},
		{"exchange on-prem, not signed", []domain.HeaderField{ar(exchangeOnPrem)}, staff, "exch01.northwind-it.example", false, "shows no dkim or dmarc pass for northwind-it.example"},
		{"postfix opendmarc on top", []domain.HeaderField{ar(openDMARC), ar(openDKIM), received}, staff, "mail.northwind-it.example", true, "dmarc=pass header.from=northwind-it.example"},
		{"postfix opendkim alone, comment with ';'", []domain.HeaderField{ar(openDKIM)}, staff, "mail.northwind-it.example", true, "dkim=pass header.d=northwind-it.example"},
		{"postfix: only the topmost header counts", []domain.HeaderField{ar(openDMARCNone), ar(openDKIM)}, staff, "mail.northwind-it.example", false, "dmarc=none"},
		{"dkim=fail with quoted reason", []domain.HeaderField{ar(openDKIMFail)}, staff, "mail.northwind-it.example", false, "dkim=fail header.d=northwind-it.example"},
		{"fastmail", []domain.HeaderField{ar(fastmailAR)}, staff, "mx6.messagingengine.com", true, "dkim=pass"},
		{"fastmail dmarc pass, dkim of the provider", []domain.HeaderField{ar(fastmailDMARCOnly)}, staff, "mx6.messagingengine.com", true, "dmarc=pass header.from=northwind-it.example"},
		{"header.oldest-pass=0 does not hide the rest", []domain.HeaderField{ar(arcOldestPass)}, staff, "mx.northwind-it.example", true, "dkim=pass"},
		{
			"forged header below the real one, trusted id",
			[]domain.HeaderField{
				hf("Received", "from attacker.example by mx.google.com"), ar("mx.google.com; dkim=none; spf=softfail smtp.mailfrom=northwind-it.example; dmarc=fail (p=NONE) header.from=northwind-it.example"),
				ar(gmailAR), // the sender's own line, directly below
			},
			staff, "mx.google.com", false, "dmarc=fail header.from=northwind-it.example",
		},
		{
			"forged header below the real one, no trusted id",
			[]domain.HeaderField{ar("mx.google.com; dkim=none; dmarc=fail header.from=northwind-it.example"), received, ar(gmailAR)},
			staff, "", false, "dmarc=fail",
		},
		{
			"forged header of another server is ignored with a trusted id",
			[]domain.HeaderField{ar("mx.google.com; dkim=pass header.d=northwind-it.example"), received, ar(openDKIMFail)},
			staff, "mail.northwind-it.example", false, "dkim=fail",
		},
		{
			"only a forged header of another server",
			[]domain.HeaderField{received, ar("mx.google.com; dkim=pass header.d=northwind-it.example")},
			staff, "mail.northwind-it.example", false, "no Authentication-Results header from mail.northwind-it.example (found authserv-id mx.google.com)",
		},
		{
			"trusted header below another server's",
			[]domain.HeaderField{ar("relay.northwind-it.example; spf=pass smtp.mailfrom=x"), ar(gmailAR)},
			staff, "mx.google.com", true, "dkim=pass",
		},
		{"dkim pass for another domain", []domain.HeaderField{ar("mx.google.com; dkim=pass header.i=@sendgrid.net header.s=s1; dmarc=fail header.from=northwind-it.example")}, staff, "", false, "dkim=pass header.d=sendgrid.net, dmarc=fail"},
		{"dkim pass of a lookalike domain", []domain.HeaderField{ar("mx.google.com; dkim=pass header.d=evilnorthwind-it.example")}, staff, "", false, "dkim=pass header.d=evilnorthwind-it.example"},
		{"dkim pass of a subdomain does not cover the parent", []domain.HeaderField{ar("mx.google.com; dkim=pass header.d=mail.northwind-it.example")}, staff, "", false, "dkim=pass header.d=mail.northwind-it.example"},
		{"dkim pass of the parent covers a subdomain", []domain.HeaderField{ar("mx.google.com; dkim=pass header.d=northwind-it.example")}, "avi@il.northwind-it.example", "", true, "for il.northwind-it.example"},
		{"dkim pass of a top-level domain covers nothing", []domain.HeaderField{ar("mx.google.com; dkim=pass header.d=example")}, staff, "", false, "dkim=pass header.d=example"},
		{"dmarc pass for another domain", []domain.HeaderField{ar("mx.google.com; dmarc=pass header.from=acme.example")}, staff, "", false, "dmarc=pass header.from=acme.example"},
		{"dmarc pass without header.from", []domain.HeaderField{ar("mx.google.com; dmarc=pass (p=reject)")}, staff, "", false, "dmarc=pass header.from="},
		{"dmarc pass of the parent does not cover a subdomain", []domain.HeaderField{ar("mx.google.com; dmarc=pass header.from=northwind-it.example")}, "avi@il.northwind-it.example", "", false, "dmarc=pass"},
		{"dkim test mode", []domain.HeaderField{ar("mx.google.com; dkim=pass (test mode) header.i=@northwind-it.example")}, staff, "", false, "(test mode)"},
		{"spf pass alone", []domain.HeaderField{ar("mx.google.com; spf=pass smtp.mailfrom=avi@northwind-it.example")}, staff, "", false, "(no dkim or dmarc result)"},
		{"auth=pass alone", []domain.HeaderField{ar("mail.northwind-it.example; auth=pass smtp.auth=avi@northwind-it.example")}, staff, "", false, "no dkim or dmarc result"},
		{"none", []domain.HeaderField{ar("mx.google.com; none")}, staff, "", false, "no dkim or dmarc result"},
		{"missing header", []domain.HeaderField{received, hf("From", staff)}, staff, "", false, "no Authentication-Results header"},
		{"no headers", nil, staff, "mx.google.com", false, "no Authentication-Results header"},
		{"ARC-Authentication-Results does not count", []domain.HeaderField{hf("ARC-Authentication-Results", "i=1; "+gmailAR)}, staff, "", false, "no Authentication-Results header"},
		{"header name in lower case", []domain.HeaderField{hf("authentication-results", gmailAR)}, staff, "mx.google.com", true, "dkim=pass"},
		{"values in upper case, quoted domain, spaces around =", []domain.HeaderField{ar(`MX.GOOGLE.COM; DKIM = PASS header.d = "NorthWind-IT.example."`)}, staff, "mx.google.com", true, "header.d=northwind-it.example"},
		{"version after authserv-id", []domain.HeaderField{ar("mx.google.com 1; dkim=pass header.d=northwind-it.example")}, staff, "mx.google.com", true, "dkim=pass"},
		{"nested comments and escapes", []domain.HeaderField{ar(`mx.example; dkim=pass (good (really; \) yes) key) header.d=northwind-it.example`)}, staff, "mx.example", true, "dkim=pass"},
		{"comment hides a fake result", []domain.HeaderField{ar("mx.example; spf=pass (dkim=pass header.d=northwind-it.example) smtp.mailfrom=x")}, staff, "", false, "no dkim or dmarc result"},
		{"quoted ';' does not split", []domain.HeaderField{ar(`mx.example; dkim=fail reason="bad; dkim=pass header.d=northwind-it.example" header.d=northwind-it.example`)}, staff, "", false, "dkim=fail"},
		{"unterminated comment", []domain.HeaderField{ar("mx.example; dkim=pass header.d=northwind-it.example (oops")}, staff, "", true, "dkim=pass"},
		{"several dkim results, the second aligned", []domain.HeaderField{ar("mx.example; dkim=pass header.d=mailgun.org; dkim=pass header.d=northwind-it.example")}, staff, "", true, "dkim=pass header.d=northwind-it.example"},
		{"method version", []domain.HeaderField{ar("mx.example; dkim/1=pass header.d=northwind-it.example")}, staff, "", true, "dkim=pass"},
		{"internationalised domain", []domain.HeaderField{ar("mx.example; dkim=pass header.d=xn--bcher-kva.example")}, "avi@Bücher.example", "", true, "header.d=xn--bcher-kva.example for xn--bcher-kva.example"},
		{"sender without domain", []domain.HeaderField{ar(gmailAR)}, "avi", "", false, `sender address "avi" has no domain`},
		{"sender in angle brackets", []domain.HeaderField{ar(gmailAR)}, "<Avi@NORTHWIND-IT.example>", "", true, "dkim=pass"},
		{"garbage", []domain.HeaderField{ar(";;;(((\"\"\\")}, staff, "", false, "no dkim or dmarc result"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := Authenticated(tc.headers, tc.from, tc.trusted)
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Errorf("Authenticated = %v, %q\nwant %v, containing %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

// TestAuthenticatedCorpus runs real messages of the shared corpus.
func TestAuthenticatedCorpus(t *testing.T) {
	tests := []struct {
		file, trusted string
		ok            bool
		why           string
	}{
		// A Gmail user through a list server running OpenDKIM.
		{"lists/usrp-85b0e51d17.eml", "mm2.emwd.com", true, "dkim=pass header.d=gmail.com for gmail.com"},
		// The list rewrote From; the signature is Yahoo's.
		{"lists/usrp-8ed2005a08.eml", "mm2.emwd.com", false, "dkim=pass header.d=yahoo.com"},
		// dkim=fail with a quoted reason and a comment with ';'.
		{"charsets/usrp-8677888633.eml", "mm2.emwd.com", false, "dkim=fail header.d=itsystems.it"},
		// GMX: only header.i, two identical headers on top.
		{"plain/stalwart-thirdparty-015.eml", "gmx.net", true, "dkim=pass header.d=proxforge.de"},
		// Gmail, DKIM and DMARC for googlemail.com.
		{"bounces/sisimai-bsd-lhost-googleworkspace-01.eml", "mx.google.com", true, "googlemail.com"},
		// Gmail's test-mode pass, for another domain anyway.
		{"plain/flanker-iphone.eml", "", false, "dkim=pass header.d=gmail.com (test mode)"},
		// Postfix with OpenARC, OpenDMARC and OpenDKIM writes one header per
		// milter; OpenARC's is on top and says nothing about DKIM or DMARC.
		// Only the topmost counts (strict; see Authenticated).
		{"lists/erofs-eae5b9b94e.eml", "lists.ozlabs.org", false, "Authentication-Results by lists.ozlabs.org shows no dkim or dmarc pass for linux.alibaba.com (no dkim or dmarc result)"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("../../shared/corpus", tc.file))
			if err != nil {
				t.Skipf("corpus not available: %v", err)
			}
			defer f.Close()
			m := ingest.Parse(f, ingest.Limits{})
			ok, why := Authenticated(m.Headers, m.From.Addr, tc.trusted)
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Errorf("Authenticated(from %s) = %v, %q\nwant %v, containing %q", m.From.Addr, ok, why, tc.ok, tc.why)
			}
		})
	}
}

func TestLexAR(t *testing.T) {
	segs := lexAR(`mx.example (comment; with semicolon); dkim = pass (a (nested) one) header.d="x.example" header.b="a b";;spf=pass`)
	var got []string
	for _, s := range segs {
		got = append(got, strings.Join(s.tokens, "|")+" #"+strings.Join(s.comments, "#"))
	}
	want := []string{
		"mx.example #comment; with semicolon",
		"dkim=pass|header.d=x.example|header.b=a b #a (nested) one",
		"spf=pass #",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lexAR:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func FuzzAuthenticated(f *testing.F) {
	for _, v := range []string{gmailAR, m365AR, openDKIMFail, fastmailAR, arcOldestPass, `a; b=(c"d;e)f"\`, "((((", `"`, "x; dkim=pass header.i=@"} {
		f.Add(v, staff, "mx.google.com")
	}
	f.Fuzz(func(t *testing.T, value, from, trusted string) {
		h := []domain.HeaderField{ar(value), ar("mx.google.com; dkim=pass header.d=northwind-it.example")}
		ok, why := Authenticated(h, from, trusted)
		if why == "" {
			t.Fatal("empty reason")
		}
		if ok && addrDomain(from) == "" {
			t.Fatalf("trusted a sender without domain: %q", from)
		}
		// The second header never counts without a trusted id: only the
		// topmost does.
		if ok && strings.TrimSpace(trusted) == "" {
			if ok1, _ := Authenticated(h[:1], from, ""); !ok1 {
				t.Fatalf("a header below the topmost one was trusted: %q", value)
			}
		}
	})
}

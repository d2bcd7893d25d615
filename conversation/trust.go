package conversation

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/emersion/go-msgauth/authres"
	"golang.org/x/net/idna"

	"github.com/northwind-it/ticketgw/domain"
)

// AuthResultsHeader is the header Authenticated reads (RFC 8601).
const AuthResultsHeader = "Authentication-Results"

// Authenticated decides whether a staff message may be relayed and its
// commands obeyed (SPEC §6): its Authentication-Results must show dkim=pass
// aligned with the domain of fromAddr, or dmarc=pass for that domain. why
// says what decided, for the log and the unauthenticated forward.
//
// Which header counts. A receiving server adds its Authentication-Results
// on top of the header, above everything the sender wrote, so:
//
//   - with trustedAuthservID set, the topmost header carrying that
//     authserv-id (compared without case) counts; headers of other servers,
//     and headers without an authserv-id (Microsoft 365 writes none), are
//     ignored wherever they are. A forged header with our id lies below ours.
//   - without it, the topmost header counts, whatever its authserv-id.
//
// Only that one header counts, even where a server writes several (Postfix
// with OpenDKIM and OpenDMARC adds one per milter, OpenDKIM's possibly
// directly above the sender's own header lines, where a forged header with
// our id would be adjacent to it): let the topmost one carry the verdict,
// e.g. OpenDMARC's dmarc=pass. A receiving server that adds no header of its
// own leaves a forged one on top; set trusted_authserv_id, and have the MTA
// remove incoming headers that claim its id (RFC 8601 §5).
//
// What passes. dkim=pass whose signing domain (header.d, else the domain of
// header.i, as Gmail writes only header.i=@domain) equals the From domain or
// is a parent of it (relaxed alignment, as DMARC: d=example.com covers
// mail.example.com, never the reverse, and never a bare top-level domain); a
// pass in DKIM test mode (the "(test mode)" comment) does not count (RFC 6376
// §3.6.1). dmarc=pass whose header.from equals the From domain. Nothing else
// passes: spf, arc, compauth, bestguesspass and auth=pass are not enough.
//
// Parsing is lenient, on top of go-msgauth's authres (LIBNOTES §6): comments
// are removed (nested, with ';' inside), quoted values unquoted, "key = value"
// joined, a header without authserv-id (first segment contains '=') is
// parsed as if it had one, header.oldest-pass=0 and other unparsable results
// are skipped one by one instead of losing the rest of the header.
func Authenticated(headers []domain.HeaderField, fromAddr string, trustedAuthservID string) (ok bool, why string) {
	fromDomain := addrDomain(fromAddr)
	if fromDomain == "" {
		return false, fmt.Sprintf("sender address %q has no domain", capText(fromAddr))
	}
	trusted := strings.ToLower(strings.TrimSpace(trustedAuthservID))

	var all []arHeader
	for _, h := range headers {
		if strings.EqualFold(strings.TrimSpace(h.Name), AuthResultsHeader) {
			all = append(all, parseARHeader(h.Value))
		}
	}
	if len(all) == 0 {
		return false, "no Authentication-Results header"
	}

	start := 0
	if trusted != "" {
		start = -1
		for i, h := range all {
			if h.id == trusted {
				start = i
				break
			}
		}
		if start < 0 {
			return false, fmt.Sprintf("no Authentication-Results header from %s (found %s)", trusted, idList(all))
		}
	}
	chosen := all[start]
	by := chosen.id
	if by == "" {
		by = "a server without authserv-id"
	}
	var seen []string
	for _, r := range chosen.results {
		switch res := r.res.(type) {
		case *authres.DKIMResult:
			d := normDomain(res.Domain)
			if d == "" {
				d = addrDomain(res.Identifier)
			}
			desc := fmt.Sprintf("dkim=%s header.d=%s", res.Value, d)
			if res.Value == authres.ResultPass && r.testMode {
				desc += " (test mode)"
			} else if res.Value == authres.ResultPass && aligned(d, fromDomain) {
				return true, fmt.Sprintf("dkim=pass header.d=%s for %s (Authentication-Results by %s)", d, fromDomain, by)
			}
			seen = append(seen, desc)
		case *authres.DMARCResult:
			f := addrDomain(res.From)
			if f == "" {
				f = normDomain(res.From)
			}
			if res.Value == authres.ResultPass && f == fromDomain {
				return true, fmt.Sprintf("dmarc=pass header.from=%s (Authentication-Results by %s)", f, by)
			}
			seen = append(seen, fmt.Sprintf("dmarc=%s header.from=%s", res.Value, f))
		}
	}
	detail := "no dkim or dmarc result"
	if len(seen) > 0 {
		if len(seen) > 6 {
			seen = append(seen[:6], "...")
		}
		detail = strings.Join(seen, ", ")
	}
	return false, capText(fmt.Sprintf("Authentication-Results by %s shows no dkim or dmarc pass for %s (%s)", by, fromDomain, detail))
}

// arHeader is one parsed Authentication-Results header.
type arHeader struct {
	id      string // authserv-id, lower-cased; "" when the header has none
	results []arResult
}

// arResult is one resinfo of a header.
type arResult struct {
	res      authres.Result
	testMode bool // a comment said "test mode" (Gmail: DKIM key with t=y)
}

// parseARHeader parses one header value leniently. Results that cannot be
// parsed are skipped.
func parseARHeader(v string) arHeader {
	var h arHeader
	segs := lexAR(v)
	if len(segs) == 0 {
		return h
	}
	first := segs[0]
	if len(first.tokens) > 0 && !strings.Contains(first.tokens[0], "=") {
		h.id = strings.ToLower(first.tokens[0])
		segs = segs[1:]
	}
	for _, s := range segs {
		r, ok := parseResInfo(s)
		if ok {
			h.results = append(h.results, r)
		}
	}
	return h
}

// parseResInfo turns one lexed resinfo into an authres result. It rebuilds
// a clean "method=value key=value ..." string that authres parses reliably.
func parseResInfo(s arSegment) (arResult, bool) {
	if len(s.tokens) == 0 {
		return arResult{}, false
	}
	method, value, found := strings.Cut(s.tokens[0], "=")
	method, _, _ = strings.Cut(method, "/") // "dkim/1=pass": method version
	if !found || method == "" || value == "" || strings.ContainsFunc(value, unicode.IsSpace) {
		return arResult{}, false
	}
	var b strings.Builder
	b.WriteString("x; ")
	b.WriteString(method + "=" + value)
	for _, t := range s.tokens[1:] {
		k, v, found := strings.Cut(t, "=")
		if !found || k == "" || strings.ContainsFunc(t, unicode.IsSpace) {
			continue
		}
		if strings.EqualFold(k, "header.oldest-pass") {
			if n, err := strconv.Atoi(v); err != nil || n <= 0 {
				continue
			}
		}
		b.WriteString(" " + t)
	}
	_, results, err := authres.Parse(b.String())
	if err != nil || len(results) != 1 {
		return arResult{}, false
	}
	r := arResult{res: results[0]}
	for _, c := range s.comments {
		if strings.Contains(strings.ToLower(c), "test mode") {
			r.testMode = true
		}
	}
	return r, true
}

// arSegment is one ';'-separated part of a header value: its tokens
// (comments removed, quoted strings unquoted) and its comments.
type arSegment struct {
	tokens   []string
	comments []string
}

// lexAR splits an Authentication-Results value into segments and tokens,
// outside comments and quoted strings (RFC 5322 CFWS, RFC 2045 value).
// Unterminated comments and quotes end at the end of the value.
func lexAR(v string) []arSegment {
	var (
		segs    []arSegment
		seg     arSegment
		tok     strings.Builder
		comment strings.Builder
		depth   int
		inQuote bool
		escape  bool
		hasTok  bool
	)
	endTok := func() {
		if hasTok {
			seg.tokens = append(seg.tokens, tok.String())
		}
		tok.Reset()
		hasTok = false
	}
	endSeg := func() {
		endTok()
		seg.tokens = joinEquals(seg.tokens)
		segs = append(segs, seg)
		seg = arSegment{}
	}
	for _, r := range v {
		switch {
		case escape:
			escape = false
			if depth > 0 {
				comment.WriteRune(r)
			} else {
				tok.WriteRune(r)
				hasTok = true
			}
		case r == '\\' && (depth > 0 || inQuote):
			escape = true
		case depth > 0:
			switch r {
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				seg.comments = append(seg.comments, comment.String())
				comment.Reset()
			} else {
				comment.WriteRune(r)
			}
		case inQuote:
			if r == '"' {
				inQuote = false
			} else {
				tok.WriteRune(r)
			}
		case r == '"':
			inQuote, hasTok = true, true
		case r == '(':
			endTok()
			depth = 1
		case r == ';':
			endSeg()
		case unicode.IsSpace(r) || r < 0x20 || r == 0x7f:
			endTok()
		default:
			tok.WriteRune(r)
			hasTok = true
		}
	}
	if depth > 0 {
		seg.comments = append(seg.comments, comment.String())
	}
	endSeg()
	// Drop empty segments ("a;;b", a trailing ';').
	out := segs[:0]
	for i, s := range segs {
		if len(s.tokens) > 0 || i == 0 {
			out = append(out, s)
		}
	}
	return out
}

// joinEquals joins tokens split around '=' by white space: "dkim = pass"
// and "header.d= example.com" become "dkim=pass", "header.d=example.com".
func joinEquals(toks []string) []string {
	var out []string
	for _, t := range toks {
		if n := len(out); n > 0 {
			last := out[n-1]
			if strings.HasSuffix(last, "=") && strings.Count(last, "=") == 1 && !strings.Contains(t, "=") ||
				strings.HasPrefix(t, "=") && !strings.Contains(last, "=") {
				out[n-1] = last + t
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// idList describes the authserv-ids of headers for a log line.
func idList(hs []arHeader) string {
	var ids []string
	for _, h := range hs {
		id := h.id
		if id == "" {
			id = "(none)"
		}
		ids = append(ids, id)
		if len(ids) == 5 && len(hs) > 5 {
			ids = append(ids, "...")
			break
		}
	}
	return "authserv-id " + strings.Join(ids, ", ")
}

// addrDomain returns the normalised domain of an address ("x@Example.COM."
// gives "example.com"), or "" when it has no '@'.
func addrDomain(addr string) string {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return normDomain(addr[i+1:])
}

// normDomain lower-cases a domain, removes a trailing dot and converts
// internationalised names to their ASCII (punycode) form.
func normDomain(d string) string {
	d = strings.TrimSuffix(strings.ToLower(strings.Trim(strings.TrimSpace(d), "<>")), ".")
	if d == "" {
		return ""
	}
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			if a, err := idna.Lookup.ToASCII(d); err == nil {
				return a
			}
			break
		}
	}
	return d
}

// aligned reports whether a DKIM signing domain d covers the From domain:
// equal, or a parent of it. d must have at least two labels, so that no
// signature "for com" covers everyone.
func aligned(d, from string) bool {
	if d == "" || from == "" || !strings.Contains(d, ".") || strings.HasPrefix(d, ".") {
		return false
	}
	return from == d || strings.HasSuffix(from, "."+d)
}

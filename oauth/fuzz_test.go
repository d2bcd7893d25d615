package oauth

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseTokenResponse: the token response parser never panics, accepts
// only tokens that cannot break SASL framing, and never quotes the body in
// its errors.
func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"ya29.a0AfH6SM","token_type":"Bearer","expires_in":3599,"scope":"https://mail.google.com/"}`,
		`{"token_type":"Bearer","scope":"https://outlook.office365.com/IMAP.AccessAsUser.All","expires_in":4436,"ext_expires_in":4436,"access_token":"eyJ0eXAi.eyJhdWQ.sig","refresh_token":"0.AUEA"}`,
		`{"access_token":"a","expires_in":"3600"}`,
		`{"access_token":"a","expires_in":null}`,
		`{"access_token":"a","expires_in":1e400}`,
		`{"access_token":"a\u0001b"}`,
		`{"access_token":5}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := parseTokenResponse(body)
		if err != nil {
			if len(body) > 8 && strings.Contains(err.Error(), string(body)) {
				t.Fatalf("error quotes the body: %v", err)
			}
			return
		}
		if res.access == "" || !validToken(res.access) || (res.refresh != "" && !validToken(res.refresh)) {
			t.Fatalf("accepted unusable tokens %q / %q", res.access, res.refresh)
		}
		if res.lifetime < 0 || res.lifetime > 24*time.Hour {
			t.Fatalf("lifetime %v out of range", res.lifetime)
		}
		code, desc, _ := parseErrorResponse(body)
		for _, s := range []string{code, desc} {
			if strings.ContainsAny(s, "\r\n\x00") || len(s) > maxDescription+len("…") || !utf8.ValidString(s) && utf8.ValidString(string(body)) {
				t.Fatalf("error field %q is not one bounded line", s)
			}
		}
	})
}

// FuzzParseServerError: the SASL error challenge parser never panics and
// keeps every field one bounded line.
func FuzzParseServerError(f *testing.F) {
	for _, s := range []string{
		`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`,
		`{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}`,
		`{"status":401}`,
		`{"status":{"nested":true}}`,
		"not json\r\n",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, challenge []byte) {
		se := parseServerError(MechOAuthBearer, challenge)
		if se == nil || se.Mechanism != MechOAuthBearer {
			t.Fatalf("parseServerError = %+v", se)
		}
		for _, s := range []string{se.Status, se.Schemes, se.Scope} {
			if strings.ContainsAny(s, "\r\n\x00\x01") || len(s) > 256+len("…") {
				t.Fatalf("field %q is not one bounded line", s)
			}
		}
		_ = se.Error()
	})
}

func TestRefreshAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ life, want time.Duration }{
		{time.Hour, 55 * time.Minute},
		{90 * time.Minute, 85 * time.Minute},
		{20 * time.Minute, 16 * time.Minute},
		{time.Second, 800 * time.Millisecond},
		{0, 0},
	} {
		if got := refreshAt(t0, tt.life).Sub(t0); got != tt.want {
			t.Errorf("refreshAt(%v) = +%v, want +%v", tt.life, got, tt.want)
		}
	}
}

func TestOneLineAndClip(t *testing.T) {
	if got := oneLine("AADSTS1: x.\r\nTrace ID: 1\r\n\tCorrelation"); got != "AADSTS1: x. Trace ID: 1 Correlation" {
		t.Errorf("oneLine = %q", got)
	}
	if got := clip("שלום עולם", 5); got != "של…" {
		t.Errorf("clip = %q", got)
	}
}

package notify

// html/template's escapers for the compiled renderer (tmplcompile.go): the
// contexts the templates put values in, HTML text, RCDATA (<title>), quoted
// attribute values and URLs in attributes. The escaped tree names them
// _html_template_<name>; each takes the pipeline's value. They reproduce
// html/template's output for those contexts exactly
// (FuzzCompiledEscapers checks them against html/template); other
// escapers, and typed content html/template treats specially in a context
// (template.HTML in an attribute), are left to html/template.

import (
	"fmt"
	htmltemplate "html/template"
	"reflect"
	"strings"
	"text/template/parse"
)

// content is html/template's content type of a stringified value.
type content int

const (
	contentPlain content = iota
	contentCSS
	contentHTML
	contentHTMLAttr
	contentJS
	contentJSStr
	contentURL
	contentSrcset
)

var htmlType = reflect.TypeFor[htmltemplate.HTML]()

// escaperCall compiles a call of html/template escaper name.
func escaperCall(name string, args []parse.Node, hasFinal bool) (ccmd, strCall, error) {
	if len(args) != 0 || !hasFinal {
		return nil, nil, fmt.Errorf("%w: %s with arguments", errUncompiled, name)
	}
	var esc func(string, content) (string, error)
	switch strings.TrimPrefix(name, "_html_template_") {
	case "htmlescaper":
		esc = func(s string, t content) (string, error) {
			if t == contentHTML {
				return s, nil
			}
			return htmlEscape(s, true), nil
		}
	case "rcdataescaper":
		esc = func(s string, t content) (string, error) {
			return htmlEscape(s, t != contentHTML), nil
		}
	case "attrescaper":
		esc = func(s string, t content) (string, error) {
			if t == contentHTML { // tags stripped first: html/template's business
				return "", errUncompiled
			}
			return htmlEscape(s, true), nil
		}
	case "urlfilter":
		esc = func(s string, t content) (string, error) {
			if t == contentURL || isSafeURL(s) {
				return s, nil
			}
			return "#ZgotmplZ", nil
		}
	case "urlnormalizer":
		esc = func(s string, _ content) (string, error) { return processURL(s, true), nil }
	case "urlescaper":
		esc = func(s string, t content) (string, error) { return processURL(s, t == contentURL), nil }
	default:
		return nil, nil, fmt.Errorf("%w: escaper %s", errUncompiled, name)
	}
	str := func(_ *cstate, _, final reflect.Value) (string, error) {
		s, t, err := stringify(final)
		if err != nil {
			return "", err
		}
		return esc(s, t)
	}
	return func(st *cstate, dot, final reflect.Value) (reflect.Value, error) {
		out, err := str(st, dot, final)
		if err != nil {
			return reflect.Value{}, err
		}
		return reflect.ValueOf(out), nil
	}, str, nil
}

// stringify is html/template's stringify of a single argument: its text
// and content type.
func stringify(v reflect.Value) (string, content, error) {
	if v.IsValid() {
		switch v.Type() {
		case stringType:
			return v.String(), contentPlain, nil
		case htmlType:
			return v.String(), contentHTML, nil
		}
	}
	if !v.IsValid() || (v.Kind() == reflect.Interface && v.IsNil()) {
		return "", contentPlain, nil // an untyped nil is skipped: fmt.Sprint()
	}
	a := v.Interface()
	switch s := indirectAny(a).(type) {
	case string:
		return s, contentPlain, nil
	case htmltemplate.CSS:
		return string(s), contentCSS, nil
	case htmltemplate.HTML:
		return string(s), contentHTML, nil
	case htmltemplate.HTMLAttr:
		return string(s), contentHTMLAttr, nil
	case htmltemplate.JS:
		return string(s), contentJS, nil
	case htmltemplate.JSStr:
		return string(s), contentJSStr, nil
	case htmltemplate.URL:
		return string(s), contentURL, nil
	case htmltemplate.Srcset:
		return string(s), contentSrcset, nil
	}
	return fmt.Sprint(indirectToStringerOrError(a)), contentPlain, nil
}

// indirectAny dereferences pointers down to a non-pointer or a nil one
// (html/template's indirect).
func indirectAny(a any) any {
	if a == nil {
		return nil
	}
	if t := reflect.TypeOf(a); t.Kind() != reflect.Pointer {
		return a
	}
	v := reflect.ValueOf(a)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	return v.Interface()
}

// indirectToStringerOrError dereferences pointers until a value that
// implements fmt.Stringer or error, or a non-pointer.
func indirectToStringerOrError(a any) any {
	if a == nil {
		return nil
	}
	v := reflect.ValueOf(a)
	for !v.Type().Implements(stringerType) && !v.Type().Implements(errorType) && v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	return v.Interface()
}

// htmlEscape is html/template's htmlReplacer with its replacement table
// (amp: with & escaped, the table for plain text) or the normalising table
// (without). Every character it replaces is ASCII, so it works on bytes:
// a byte of a multi-byte or invalid sequence is never one of them.
func htmlEscape(s string, amp bool) string {
	var b strings.Builder
	written := 0
	for i := 0; i < len(s); i++ {
		var repl string
		switch s[i] {
		case 0:
			repl = "\uFFFD"
		case '"':
			repl = "&#34;"
		case '&':
			if !amp {
				continue
			}
			repl = "&amp;"
		case '\'':
			repl = "&#39;"
		case '+':
			repl = "&#43;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		default:
			continue
		}
		if written == 0 {
			b.Grow(len(s) + 16)
		}
		b.WriteString(s[written:i])
		b.WriteString(repl)
		written = i + 1
	}
	if written == 0 {
		return s
	}
	b.WriteString(s[written:])
	return b.String()
}

// isSafeURL is html/template's: no scheme, or http, https or mailto.
func isSafeURL(s string) bool {
	if protocol, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(protocol, "/") {
		if !strings.EqualFold(protocol, "http") && !strings.EqualFold(protocol, "https") && !strings.EqualFold(protocol, "mailto") {
			return false
		}
	}
	return true
}

// processURL is html/template's processURLOnto: percent-encodes every byte
// but the unreserved ones (and, when norm, the reserved ones and valid
// escapes).
func processURL(s string, norm bool) string {
	var b strings.Builder
	written := 0
	for i, n := 0, len(s); i < n; i++ {
		c := s[i]
		switch c {
		case '!', '#', '$', '&', '*', '+', ',', '/', ':', ';', '=', '?', '@', '[', ']':
			if norm {
				continue
			}
		case '-', '.', '_', '~':
			continue
		case '%':
			if norm && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]) {
				continue
			}
		default:
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
				continue
			}
		}
		if written == 0 {
			b.Grow(len(s) + 16)
		}
		b.WriteString(s[written:i])
		fmt.Fprintf(&b, "%%%02x", c)
		written = i + 1
	}
	if written == 0 {
		return s
	}
	b.WriteString(s[written:])
	return b.String()
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

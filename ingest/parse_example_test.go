package ingest_test

import (
	"fmt"
	"strings"

	"github.com/northwind-it/ticketgw/ingest"
)

func ExampleParse() {
	raw := "From: =?windows-1255?B?5OXj5A==?= <dana@acme.co.il>\r\n" +
		"Subject: =?utf-8?b?157Xoteg15Qg15DXldeY15XXnteY15k=?=: printer\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n" +
		"\r\n" +
		"<p>I am away until <b>Sunday</b>.</p>\r\n"
	m := ingest.Parse(strings.NewReader(raw), ingest.DefaultLimits())
	fmt.Println(m.From.Addr)
	fmt.Println(m.Subject)
	fmt.Println(m.Text, m.TextFromHTML)
	fmt.Println(m.Auto, "-", m.AutoWhy)
	// Output:
	// dana@acme.co.il
	// מענה אוטומטי: printer
	// I am away until Sunday. true
	// auto-reply - Auto-Submitted: auto-replied
}

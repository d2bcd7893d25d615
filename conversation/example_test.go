package conversation_test

import (
	"fmt"

	"github.com/northwind-it/ticketgw/conversation"
	"github.com/northwind-it/ticketgw/domain"
)

func ExampleFindTags() {
	for _, t := range conversation.FindTags("RE: [acme-42] printer [T-7]") {
		fmt.Println(t.ID, t.Prefix, t.Number)
	}
	// Output:
	// ACME-0042 ACME 42
	// T-0007 T 7
}

func ExampleStripReplyPrefixes() {
	prefixes, rest := conversation.StripReplyPrefixes("RE: AW: Re[2]: השב: printer")
	fmt.Printf("%q %q\n", prefixes, rest)
	// Output:
	// ["RE:" "AW:" "Re[2]:" "השב:"] "printer"
}

func ExampleTagSubject() {
	fmt.Println(conversation.TagSubject("Re: Fwd: printer", "ACME-0042"))
	fmt.Println(conversation.TagSubject("Re: [acme-42] printer", "ACME-0042"))
	// Output:
	// Re: Fwd: [ACME-0042] printer
	// Re: [acme-42] printer
}

func ExampleParseCommands() {
	cmds, body, problems := conversation.ParseCommands("#pending\n#priority high\n\nHi Dana, can you send a photo of the screen?\n")
	for _, c := range cmds {
		fmt.Printf("%d %s %q\n", c.Line, c.Kind, c.Arg)
	}
	fmt.Printf("%q %d\n", body, len(problems))

	_, _, problems = conversation.ParseCommands("#resolve\n#reslove\n")
	for _, p := range problems {
		fmt.Println(p)
	}
	// Output:
	// 1 pending ""
	// 2 priority "high"
	// "Hi Dana, can you send a photo of the screen?\n" 0
	// line 2: unknown command "#reslove" (did you mean #resolve?); the commands are #resolve, #close, #pending, #open, #note, #category, #priority, #schedule, #change, #for
}

func ExampleAuthenticated() {
	headers := []domain.HeaderField{
		{Name: "Received", Value: "from mail-sor-f41.google.com by mx.google.com"},
		{Name: "Authentication-Results", Value: "mx.google.com; dkim=pass (2048-bit key; unprotected) header.i=@northwind-it.example; spf=pass smtp.mailfrom=northwind-it.example"},
	}
	fmt.Println(conversation.Authenticated(headers, "avi@northwind-it.example", "mx.google.com"))
	fmt.Println(conversation.Authenticated(headers, "avi@northwind-it.example", "mail.northwind-it.example"))
	// Output:
	// true dkim=pass header.d=northwind-it.example for northwind-it.example (Authentication-Results by mx.google.com)
	// false no Authentication-Results header from mail.northwind-it.example (found authserv-id mx.google.com)
}

func ExampleStripQuotedSummary() {
	reply := `Fixed, please try again.

On Mon, 30 Nov 2026 at 09:30, Dana via Northwind IT Support <support@northwind-it.example> wrote:
> New ticket ACME-0042 for ACME Ltd.
> ----------------------------------------------------------------------
> Ticket:           ACME-0042 (open)
> Subject:          Printer
> ----------------------------------------------------------------------
> Reply to this message to answer the customer.
> ======================================================================
>
> The printer is jammed.
`
	fmt.Print(conversation.StripQuotedSummary(reply))
	// Output:
	// Fixed, please try again.
	//
	// On Mon, 30 Nov 2026 at 09:30, Dana via Northwind IT Support <support@northwind-it.example> wrote:
	// > The printer is jammed.
}

func ExampleStripCommandLinesHTML() {
	out, n := conversation.StripCommandLinesHTML(`<div dir="ltr">#resolve<div><br></div><div>Fixed.</div></div>`, 1)
	fmt.Println(n, out)
	// Output:
	// 1 <html><head></head><body><div dir="ltr"><div>Fixed.</div></div></body></html>
}

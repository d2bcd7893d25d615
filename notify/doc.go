// Package notify renders and sends everything the gateway writes: templates,
// composition of outgoing mail, SMTP delivery.
//
// # Templates
//
// Every message the gateway writes is rendered from a template set: for each
// kind (KindAck, KindForward, KindResolved, KindUnknownSender,
// KindCommandError, KindWarn, KindBreach) and language (LangHebrew,
// LangEnglish) there is a subject, a text/plain part and an HTML part, in
// files named
//
//	<kind>.<lang>.subject.tmpl   text/template, one line
//	<kind>.<lang>.txt.tmpl       text/template
//	<kind>.<lang>.html.tmpl      html/template (contextual auto-escaping)
//
// The built-in set is embedded in the binary (see Builtin). LoadTemplates
// reads `templates.dir`: a file there with one of these names replaces the
// built-in file of the same name; any other file name is an error, so that a
// misspelt override is reported by `gateway check` rather than silently
// ignored. Templates run with missingkey=error, and Check renders every
// template against sample data that drives each branch of the built-ins.
//
// Dates are shown in the zone of the template data (Base.Loc, the contract
// calendar's zone) and in the language being rendered, with a 24-hour clock.
// Functions available to every template, bound per Render to its language
// and zone:
//
//	longDate t        Monday 30 November 2026 / יום שני, 30 בנובמבר 2026
//	dateTime t        Monday 30 November 2026, 10:30 / יום שני, 30 בנובמבר 2026, 10:30
//	time t            10:30
//	shortDate t       30 Nov 2026 / 30/11/2026
//	monthYear t       December 2026 / דצמבר 2026
//	weekday t         Tuesday / יום שלישי
//	sameMonth a b     same calendar month in the zone (bool); sameDay likewise
//	category c        fault, request, IMAC / תקלה, בקשה, IMAC
//	categoryLong c    as used in "we classified your message as a ..."
//	priority p, status s, deadline d   localized labels
//	oneLine s         s as one line: controls and bidi overrides removed
//	re s              s with a "Re: " prefix unless it has one
//	ltr s             a left-to-right island in Hebrew (U+200E marks in
//	                  text, <span dir="ltr">…</span>&lrm; in HTML); s in English
//	bidi s            an island only when s's direction differs from the language's
//	address a, addresses as   "Name <addr>" with islands
//	lang              the language being rendered
//
// A date function given a zero time, or data without a zone, fails the
// render: guard optional times with {{if not .ResponseDue.IsZero}}. Hebrew
// output follows the RTL rules of LIBNOTES §7: direction set at every level
// of the HTML, ticket tags, addresses and Latin names as left-to-right
// islands, and every line of the subject and text part starting with a
// Hebrew letter or U+200F RIGHT-TO-LEFT MARK (the renderer adds the mark
// where a line starts otherwise).
//
// Rendering never lets a customer's text change the structure of a message:
// HTML parts are escaped by html/template, subjects are reduced to one line
// with control and bidi-override characters removed and capped at
// MaxSubjectRunes, and text parts lose every control character but newline
// and tab.
package notify

// Package conversation holds the pure decisions the pipeline makes about a
// message that belongs to a conversation: which ticket a subject names, how
// a relayed subject is tagged, which commands a staff reply carries, whether
// a staff message is authenticated, and what of a staff reply the customer
// must not see. Nothing here touches the network, Redis or the clock; every
// function is safe for concurrent use and never panics on any input.
//
// # Subjects (SPEC §4)
//
// FindTags finds ticket tags such as [ACME-0042] anywhere in a subject, in
// any case and zero padding ([acme-42] is ACME-0042). A tag is only a
// candidate: the caller checks its prefix against the configured contracts
// (rules.Config.ContractByPrefix) or the store, so "[2024-01]" in a subject
// is harmless. StripReplyPrefixes splits off a chain of reply and forward
// prefixes (Re:, AW:, SV:, ΑΠ:, 回复:, השב:, Re[2]:, with full-width colons
// and bidi marks) and TagSubject places a tag after that chain unless the
// subject already carries it.
//
// # Commands by mail (SPEC §2 flow 4)
//
// ParseCommands reads the command block at the top of a staff reply's text:
// leading lines of the form "#word args", blank lines allowed between them,
// ended by the first other non-blank line. It returns the commands, the body
// without them, and the problems (unknown commands, invalid arguments,
// conflicting commands) that must be reported to the staff member instead of
// applying anything. ContextProblems adds the checks that depend on the
// message (#for only on a new message; other commands only on a ticket),
// HasNote tells that nothing may be relayed, and StripCommandLinesHTML
// removes the command lines from the reply's HTML part so the relayed HTML
// does not show them.
//
// # Trust (SPEC §6)
//
// Authenticated decides whether a staff message may be relayed and obeyed:
// the topmost Authentication-Results header (with a trusted authserv-id: the
// topmost one carrying it) must show dkim=pass aligned with the From domain,
// or dmarc=pass for it. Headers are parsed leniently (comments, quoted
// strings, Microsoft 365's missing authserv-id, Gmail's header.i=@domain) and
// trusted strictly.
//
// # Quoted summaries
//
// Staff reply to the forward of a ticket, whose text starts with the
// gateway's summary block (notify templates forward.*.txt.tmpl).
// StripQuotedSummary removes that block from a reply's text, whether quoted
// with '>' (Gmail, Apple Mail, Thunderbird) or below an Outlook header block,
// and keeps the staff member's words and any quote of the customer's.
// StripQuotedSummaryHTML does the same for the HTML part.
package conversation

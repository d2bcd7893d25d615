// Package ingest reads mail: the IMAP source and the MIME parser.
//
// Parse turns one raw RFC 5322 message into a domain.Message. It is lenient
// with hard limits (see Limits): it never fails and never panics, and what
// it had to repair or skip is listed in Message.Warnings. It streams the
// message once, holding only text/plain and text/html bodies (bounded) and
// counting the sizes of attachments without keeping them.
//
// Charsets: every charset go-message knows, plus the aliases real mail uses
// (win-1255, ms-hebrew, ks_c_5601-1987, ...), UTF-7, and a fallback for
// mislabelled or undeclared 8-bit text: UTF-8 when valid, else windows-1255
// when the bytes read as Hebrew, else windows-1252. ISO-8859-8 in visual
// order is decoded byte for byte and not reordered.
//
// Parse also decides from the message alone whether it is automatic mail
// (bounce, auto-reply, list or no-reply sender; see auto.go for the decision
// table) and records the header evidence in Message.AutoWhy.
package ingest

// Package service wires the stages into the running gateway: a message
// fetched from the mailbox is parsed (ingest), classified (classify), given
// its promised dates (sla), stored with its timers and outgoing mail in one
// step (store), and the outbox is drained to SMTP (notify) by a separate
// loop, so that sending is never on the path that stores a ticket.
//
// Decide is the pure part, shared with `gateway classify`.
package service

// Package e2e is the black-box suite that proves the gateway on a real mail
// stack: it builds the `gateway` binary, runs it with examples/gateway.yaml
// against a private Dovecot (IMAP for the support mailbox, LMTP for
// delivery) and a private Postfix (the gateway's SMTP relay, delivering
// into Dovecot) on free loopback ports, and a real Redis, and reads what
// customers and staff receive back over IMAP.
//
// The suite needs Debian's dovecot-imapd, dovecot-lmtpd and postfix, root
// (Postfix's master runs only as root) and Redis at $REDIS_ADDR (default
// 127.0.0.1:6379); `bash .ci/run` installs and starts what is missing. With
// CI=true a missing piece fails the suite; otherwise it is skipped with a
// message saying what is missing.
package e2e

package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/store"
)

// Outgoing mail that embeds a large message (SPEC §5): a staff copy of a
// customer message or a staff reply relayed to the customer whose original
// is larger than outboxInlineBytes is not composed into the outbox. The
// entry holds a recipe instead (every composition parameter but the
// original) and a reference to the original by mailbox and Message-ID; the
// sender finds the original in the mailbox's processed folder and streams
// the composition into SMTP DATA. Composition is deterministic, so a retry
// sends the same bytes. A message without a Message-ID, or one truncated
// on reading (so the processed copy is not what was handled), stays inline.

// outboxInlineBytes is the largest original whose composition is stored in
// the outbox as bytes.
const outboxInlineBytes = 1 << 20

// Recipe kinds.
const (
	recipeForward = "forward" // notify.WriteForward
	recipeRelay   = "relay"   // notify.WriteRelay with editStaffText
)

// outboxRecipe is how an outgoing mail is composed from its original.
type outboxRecipe struct {
	Kind       string           `json:"kind"`
	From       domain.Address   `json:"from"`
	To         []domain.Address `json:"to"` // forward: the staff queue alone
	Cc         []domain.Address `json:"cc,omitempty"`
	ReplyTo    string           `json:"reply_to,omitempty"`
	Subject    string           `json:"subject"`
	HeaderText string           `json:"header_text,omitempty"`
	HeaderHTML string           `json:"header_html,omitempty"`
	MessageID  string           `json:"message_id"`
	InReplyTo  string           `json:"in_reply_to,omitempty"`
	References []string         `json:"references,omitempty"`
	LoopMarker string           `json:"loop_marker,omitempty"`
	TicketID   string           `json:"ticket_id"`
	Date       time.Time        `json:"date"`
}

func forwardRecipe(f notify.ForwardMail) outboxRecipe {
	return outboxRecipe{Kind: recipeForward, From: f.From, To: []domain.Address{{Addr: f.To}}, ReplyTo: f.ReplyTo,
		Subject: f.Subject, HeaderText: f.HeaderText, HeaderHTML: f.HeaderHTML, MessageID: f.MessageID,
		InReplyTo: f.InReplyTo, References: f.References, LoopMarker: f.LoopMarker, TicketID: f.TicketID, Date: f.Date}
}

func relayRecipe(r notify.RelayMail) outboxRecipe {
	return outboxRecipe{Kind: recipeRelay, From: r.From, To: r.To, Cc: r.Cc, ReplyTo: r.ReplyTo, Subject: r.Subject,
		MessageID: r.MessageID, InReplyTo: r.InReplyTo, References: r.References, LoopMarker: r.LoopMarker,
		TicketID: r.TicketID, Date: r.Date}
}

// write composes the mail from orig to w.
func (r outboxRecipe) write(w io.Writer, orig io.Reader) error {
	var err error
	switch r.Kind {
	case recipeForward:
		if len(r.To) != 1 {
			return fmt.Errorf("forward recipe with %d recipients", len(r.To))
		}
		_, err = notify.WriteForward(w, notify.ForwardMail{From: r.From, To: r.To[0].Addr, ReplyTo: r.ReplyTo,
			Subject: r.Subject, HeaderText: r.HeaderText, HeaderHTML: r.HeaderHTML, Original: orig,
			MessageID: r.MessageID, InReplyTo: r.InReplyTo, References: r.References, LoopMarker: r.LoopMarker,
			TicketID: r.TicketID, Date: r.Date})
	case recipeRelay:
		_, err = notify.WriteRelay(w, notify.RelayMail{From: r.From, To: r.To, Cc: r.Cc, ReplyTo: r.ReplyTo,
			Subject: r.Subject, MessageID: r.MessageID, InReplyTo: r.InReplyTo, References: r.References,
			LoopMarker: r.LoopMarker, TicketID: r.TicketID, Date: r.Date, Original: orig, EditText: editStaffText})
	default:
		return fmt.Errorf("unknown recipe kind %q", r.Kind)
	}
	return err
}

// originKey is the context key of the mailbox a message is handled from.
type originKey struct{}

// withOrigin records that the message being handled was read whole from
// mailbox, and so can be found in its processed folder once handled.
func withOrigin(ctx context.Context, mailbox string) context.Context {
	return context.WithValue(ctx, originKey{}, mailbox)
}

// byReference returns where a large original will be found after it is
// handled, or nil when the mail is to be composed inline.
func byReference(ctx context.Context, m *domain.Message, raw *Original) *store.SourceRef {
	mailbox, _ := ctx.Value(originKey{}).(string)
	if mailbox == "" || m.MessageID == "" || raw.Size() <= outboxInlineBytes {
		return nil
	}
	return &store.SourceRef{Mailbox: mailbox, MessageID: m.MessageID}
}

// referenceEntry completes e (composed to nowhere by the caller, so that it
// failed then as the inline composition would) to refer to its original.
func referenceEntry(e store.OutboxEntry, ref *store.SourceRef, rc outboxRecipe) (store.OutboxEntry, error) {
	recipe, err := json.Marshal(rc)
	if err != nil {
		return e, fmt.Errorf("encode %s recipe: %w", rc.Kind, err)
	}
	e.Raw, e.Ref, e.Recipe = nil, ref, recipe
	return e, nil
}

// FetchOriginal streams the message with messageID (without angle
// brackets) from mailbox's processed folder to fn. It fails with an error
// wrapping ingest.ErrMessageNotFound when the message is not there (yet).
type FetchOriginal func(ctx context.Context, mailbox, messageID string, fn func(io.Reader) error) error

// ProcessedFetcher is a FetchOriginal over the mailboxes' IMAP
// configurations, keyed by mailbox name (IMAPConfig.Name).
func ProcessedFetcher(mailboxes map[string]ingest.IMAPConfig, opts ...ingest.SourceOption) FetchOriginal {
	return func(ctx context.Context, mailbox, messageID string, fn func(io.Reader) error) error {
		cfg, ok := mailboxes[mailbox]
		if !ok {
			return fmt.Errorf("fetch original: mailbox %q is not configured", mailbox)
		}
		return ingest.FindByMessageID(ctx, cfg, cfg.ProcessedFolder, messageID, func(f *ingest.Fetched) error {
			return fn(f.Body)
		}, opts...)
	}
}

// StreamSender delivers mail composed while it is sent (implemented by
// *notify.Sender).
type StreamSender interface {
	SendStream(ctx context.Context, env notify.Envelope, write func(io.Writer) error) error
}

// sendByReference sends an entry that refers to its original. Its errors are
// *notify.SendError (Op "source" when the original could not be read or
// composed), classified for retry: an original not in the processed folder
// yet, or an IMAP failure, is temporary; a bad recipe or a composition the
// original cannot make is permanent.
func (o *OutboxSender) sendByReference(ctx context.Context, e store.OutboxEntry) error {
	var rc outboxRecipe
	if err := json.Unmarshal(e.Recipe, &rc); err != nil {
		return &notify.SendError{Op: "source", Err: fmt.Errorf("decode recipe: %w", err)}
	}
	ss, ok := o.Sender.(StreamSender)
	if !ok || o.Fetch == nil {
		return &notify.SendError{Op: "source", Temporary: true,
			Err: errors.New("this instance cannot send mail that refers to a processed message")}
	}
	env := notify.Envelope{From: e.From, To: e.To}
	err := o.Fetch(ctx, e.Ref.Mailbox, e.Ref.MessageID, func(orig io.Reader) error {
		return ss.SendStream(ctx, env, func(w io.Writer) error { return rc.write(w, orig) })
	})
	var (
		se *notify.SendError
		re *notify.RecipientError
		ce *notify.ComposeError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return &notify.SendError{Op: "source", Temporary: notify.IsTemporary(ce.Err), Err: err}
	case errors.As(err, &se), errors.As(err, &re):
		return err
	default: // not found (yet), or the IMAP server
		return &notify.SendError{Op: "source", Temporary: true, Err: fmt.Errorf("read original <%s> of %s: %w", e.Ref.MessageID, e.Ref.Mailbox, err)}
	}
}

package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/store"
)

// Language picks the language of mail to a customer: the contract's, or for
// "auto" (and unknown senders) Hebrew when the message is mostly written in
// Hebrew script, else English.
func Language(ct *rules.Contract, m *domain.Message) string {
	if ct != nil && (ct.Language == notify.LangHebrew || ct.Language == notify.LangEnglish) {
		return ct.Language
	}
	heb, lat := 0, 0
	for _, r := range m.Subject + " " + firstN(m.Text, 4000) {
		switch {
		case unicode.Is(unicode.Hebrew, r):
			heb++
		case unicode.Is(unicode.Latin, r):
			lat++
		}
	}
	if heb > 0 && heb*2 >= lat {
		return notify.LangHebrew
	}
	return notify.LangEnglish
}

func firstN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// ticketFromDecision is the ticket a decision would open, before the store
// assigns its id and reserves its IMAC day.
func ticketFromDecision(cfg *rules.Config, dec Decision) domain.Ticket {
	m := dec.Msg
	t := domain.Ticket{
		Contract:  dec.Class.Contract,
		Category:  dec.Class.Category,
		Priority:  dec.Class.Priority,
		Status:    domain.StatusOpen,
		Subject:   m.Subject,
		Requester: m.From,
		Cc:        customerCopies(cfg, m),
		Rules:     dec.Class.Rules,
		Tags:      dec.Class.Tags,
		MessageID: m.MessageID,
		Opened:    dec.Received,

		EffectiveStart: dec.Deadlines.EffectiveStart,
		ResponseDue:    dec.Deadlines.ResponseDue,
		ResolutionDue:  dec.Deadlines.ResolutionDue,
		ResponseWarn:   dec.Deadlines.ResponseWarn,
		ResolutionWarn: dec.Deadlines.ResolutionWarn,
	}
	if dec.IMAC != nil {
		t.IMACDate = dec.IMAC.Date.String()
		t.IMACQuotaUse = dec.IMAC.QuotaUsed
		t.IMACQuota = dec.IMAC.Quota
		t.Billable = dec.IMAC.Billable
	}
	return t
}

// PlaceholderTicket is the ticket id shown by `gateway classify`, which
// reads no state: the contract's prefix and 0000.
func PlaceholderTicket(cfg *rules.Config, dec Decision) string {
	if dec.Contract != nil {
		return dec.Contract.Prefix + "-0000"
	}
	return rules.NoContractPrefix + "-0000"
}

func base(cfg *rules.Config, loc *time.Location) notify.Base {
	return notify.Base{ServiceName: cfg.Service.Name, ServiceAddress: cfg.Service.Address, Loc: loc}
}

func contractName(ct *rules.Contract) string {
	if ct == nil {
		return ""
	}
	return ct.Name
}

// ackData builds the acknowledgement's template data for a stored ticket.
func ackData(cfg *rules.Config, dec Decision, t domain.Ticket) (notify.AckData, error) {
	ti, err := notify.NewTicketInfo(&t, contractName(dec.Contract), dec.Loc)
	if err != nil {
		return notify.AckData{}, err
	}
	if dec.IMAC != nil && t.IMACDate == dec.IMAC.Date.String() {
		ti.Deferred = dec.IMAC.Deferred
	}
	if !dec.HasTargets && t.Category != domain.IMAC {
		ti.NoTargets = true
		// A ticket without a contract (unknown_senders: ticket) has no
		// calendar and so no next opening: NewTicketInfo's fallback (the
		// time received) stands, rather than a zero time the template
		// cannot format.
		if !dec.NextOpening.IsZero() {
			ti.NextOpening = dec.NextOpening
		}
	}
	return notify.AckData{
		Base:            base(cfg, dec.Loc),
		TicketInfo:      ti,
		CustomerName:    dec.Msg.From.Name,
		CustomerAddress: dec.Msg.From.Addr,
	}, nil
}

// RenderAck renders the acknowledgement a decision leads to, for ticket id.
// ok is false when no acknowledgement is sent (the decision's ack_reason).
func RenderAck(tmpl *notify.Templates, cfg *rules.Config, dec Decision, id string) (notify.Rendered, bool, error) {
	if !dec.Class.Ack {
		return notify.Rendered{}, false, nil
	}
	t := ticketFromDecision(cfg, dec)
	t.ID = id
	data, err := ackData(cfg, dec, t)
	if err != nil {
		return notify.Rendered{}, false, err
	}
	r, err := tmpl.Render(notify.KindAck, Language(dec.Contract, dec.Msg), data)
	return r, err == nil, err
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}

func (p *Pipeline) supportAddress() domain.Address {
	return domain.Address{Name: p.Cfg.Service.Name, Addr: p.Cfg.Service.Address}
}

// references is the References list of a reply to m.
func references(m *domain.Message) []string {
	refs := append([]string{}, m.References...)
	if m.MessageID != "" {
		refs = append(refs, m.MessageID)
	}
	if len(refs) > 20 { // keep the first and the most recent, as RFC 5322 suggests
		refs = append(refs[:1], refs[len(refs)-19:]...)
	}
	return refs
}

func (p *Pipeline) composeAck(dec Decision, t domain.Ticket) (store.OutboxEntry, string, error) {
	data, err := ackData(p.Cfg, dec, t)
	if err != nil {
		return store.OutboxEntry{}, "", err
	}
	lang := Language(dec.Contract, dec.Msg)
	r, err := p.Templates.Render(notify.KindAck, lang, data)
	if err != nil {
		return store.OutboxEntry{}, "", fmt.Errorf("render acknowledgement: %w", err)
	}
	id, err := notify.NewMessageID("ack", t.ID, domainOf(p.Cfg.Service.Address))
	if err != nil {
		return store.OutboxEntry{}, "", err
	}
	raw, env, err := notify.ComposeAck(notify.AckMail{
		From: p.supportAddress(), To: dec.Msg.From,
		Subject: r.Subject, Text: r.Text, HTML: r.HTML,
		MessageID: id, InReplyTo: dec.Msg.MessageID, References: references(dec.Msg),
		LoopMarker: p.Cfg.Service.Address, TicketID: t.ID, Date: p.Now(), Lang: lang,
	})
	if err != nil {
		return store.OutboxEntry{}, "", fmt.Errorf("compose acknowledgement: %w", err)
	}
	return store.OutboxEntry{Key: "ack:" + t.ID, Kind: "ack", Ticket: t.ID, From: env.From, To: env.To, Raw: raw}, id, nil
}

func (p *Pipeline) composeForward(ctx context.Context, dec Decision, t domain.Ticket, raw *Original) (store.OutboxEntry, string, error) {
	return p.composeForwardOf(ctx, dec, t, raw, false, false)
}

// composeForwardOf composes the staff copy of a customer message: a new
// ticket, or a follow-up (reopened when it reopened a resolved ticket).
// A large original is referred to rather than copied (byReference).
func (p *Pipeline) composeForwardOf(ctx context.Context, dec Decision, t domain.Ticket, raw *Original, followUp, reopened bool) (store.OutboxEntry, string, error) {
	ti, err := notify.NewTicketInfo(&t, contractName(dec.Contract), dec.Loc)
	if err != nil {
		return store.OutboxEntry{}, "", err
	}
	data := notify.ForwardData{
		Base: base(p.Cfg, dec.Loc), TicketInfo: ti,
		Requester: dec.Msg.From, Cc: t.Cc, Status: t.Status, Rules: t.Rules, Tags: t.Tags,
		AckSent: dec.Class.Ack && !followUp, AckReason: dec.Class.AckReason, Warnings: dec.Msg.Warnings,
		FollowUp: followUp, Reopened: reopened,
	}
	if followUp {
		data.AckReason = "follow-up"
		if !strings.EqualFold(dec.Msg.From.Addr, t.Requester.Addr) {
			data.From = dec.Msg.From
		}
	}
	// Staff read the summary in the staff language: English unless the
	// contract is Hebrew.
	lang := staffLanguage(p.Cfg.ContractByID(t.Contract))
	r, err := p.Templates.Render(notify.KindForward, lang, data)
	if err != nil {
		return store.OutboxEntry{}, "", fmt.Errorf("render forward: %w", err)
	}
	id, err := notify.NewMessageID("fwd", t.ID, domainOf(p.Cfg.Service.Address))
	if err != nil {
		return store.OutboxEntry{}, "", err
	}
	name := dec.Msg.From.Name
	if name == "" {
		name = dec.Msg.From.Addr
	}
	fm := notify.ForwardMail{
		From:       domain.Address{Name: name + " via " + p.Cfg.Service.Name, Addr: p.Cfg.Service.Address},
		To:         p.Cfg.Staff.Queue,
		ReplyTo:    p.Cfg.Service.Address,
		Subject:    r.Subject,
		HeaderText: r.Text, HeaderHTML: r.HTML,
		MessageID: id, InReplyTo: dec.Msg.MessageID, References: references(dec.Msg),
		LoopMarker: p.Cfg.Service.Address, TicketID: t.ID, Date: p.Now(),
	}
	e, err := forwardOut(ctx, dec.Msg, raw, fm, store.OutboxEntry{Key: "fwd:" + t.ID + ":" + dedupKey(dec.Msg, raw), Kind: "forward", Ticket: t.ID})
	return e, id, err
}

// forwardOut completes e, the outbox entry of the staff copy fm of raw:
// by reference to the processed copy when raw is large (byReference), so
// that neither memory nor Redis holds a large message, else composed inline.
// Either way it is composed now, so that it fails now if it would fail
// when sent.
func forwardOut(ctx context.Context, m *domain.Message, raw *Original, fm notify.ForwardMail, e store.OutboxEntry) (store.OutboxEntry, error) {
	fm.Original = raw.Reader()
	if ref := byReference(ctx, m, raw); ref != nil {
		env, err := notify.WriteForward(io.Discard, fm)
		if err != nil {
			return e, fmt.Errorf("compose forward: %w", err)
		}
		e.From, e.To = env.From, env.To
		return referenceEntry(e, ref, forwardRecipe(fm))
	}
	out, env, err := notify.ComposeForward(fm)
	if err != nil {
		return e, fmt.Errorf("compose forward: %w", err)
	}
	e.From, e.To, e.Raw = env.From, env.To, out
	return e, nil
}

// NoTicketID is the X-Ticket-ID of a staff copy of mail that belongs to no
// ticket (an unknown sender's, unauthenticated staff mail naming none):
// notify.ComposeForward requires one.
const NoTicketID = "none"

// unknownSender handles mail from a sender no contract matches under
// unknown_senders: reply (a polite notice, rate-limited by the outbox key per
// sender and hour, and a copy to the staff queue) or ignore (filed only).
func (p *Pipeline) unknownSender(ctx context.Context, dec Decision, raw *Original, log *slog.Logger) (Outcome, error) {
	out := Outcome{Decision: dec, Action: "unknown-sender"}
	if p.Cfg.UnknownSenders == "ignore" {
		log.Info("unknown sender ignored")
		return out, nil
	}
	m := dec.Msg
	lang := Language(nil, m)
	r, err := p.Templates.Render(notify.KindUnknownSender, lang, notify.UnknownSenderData{
		Base: base(p.Cfg, time.UTC), SenderName: m.From.Name, SenderAddress: m.From.Addr,
		Subject: m.Subject, Received: m.Received,
	})
	if err != nil {
		return out, fmt.Errorf("render unknown-sender notice: %w", err)
	}
	id, err := notify.NewMessageID("notice", "", domainOf(p.Cfg.Service.Address))
	if err != nil {
		return out, err
	}
	notice, env, err := notify.ComposeAck(notify.AckMail{
		From: p.supportAddress(), To: m.From, Subject: r.Subject, Text: r.Text, HTML: r.HTML,
		MessageID: id, InReplyTo: m.MessageID, References: references(m),
		LoopMarker: p.Cfg.Service.Address, Date: p.Now(), Lang: lang,
	})
	if err != nil || !notify.ValidAddress(m.From.Addr) {
		// No usable sender address: staff still get the copy below.
		log.Warn("unknown sender: no notice (no usable address)", "from", m.From.Addr, "err", err)
		notice = nil
	}
	// One notice per sender per hour of the message's arrival: the key makes
	// a second one within the hour a no-op.
	hour := m.Received.UTC().Format("2006010215")
	key := "notice:" + strings.ToLower(m.From.Addr) + ":" + hour
	var entries []store.OutboxEntry
	if notice != nil {
		entries = append(entries, store.OutboxEntry{Key: key, Kind: "unknown-sender", From: env.From, To: env.To, Raw: notice})
	}
	fwdID, err := notify.NewMessageID("fwd", "", domainOf(p.Cfg.Service.Address))
	if err != nil {
		return out, err
	}
	fwd, err := forwardOut(ctx, m, raw, notify.ForwardMail{
		From:       domain.Address{Name: m.From.Addr + " via " + p.Cfg.Service.Name, Addr: p.Cfg.Service.Address},
		To:         p.Cfg.Staff.Queue,
		ReplyTo:    p.Cfg.Service.Address,
		Subject:    "[unknown sender] " + m.Subject,
		HeaderText: fmt.Sprintf("Mail from %s, who matches no contract. No ticket was opened; the sender got a notice.\n", m.From.Addr),
		MessageID:  fwdID, TicketID: NoTicketID,
		InReplyTo: m.MessageID, References: references(m), LoopMarker: p.Cfg.Service.Address, Date: p.Now(),
	}, store.OutboxEntry{Key: "fwd:unknown:" + dedupKey(m, raw), Kind: "forward"})
	if err != nil {
		return out, fmt.Errorf("unknown-sender forward: %w", err)
	}
	if err := p.commit(ctx, "", nil, append(entries, fwd)); err != nil {
		return out, fmt.Errorf("queue unknown-sender notice and forward: %w", err)
	}
	log.Info("unknown sender: notice and staff copy queued")
	return out, nil
}

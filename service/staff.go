package service

import (
	"cmp"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/classify"
	"github.com/northwind-it/ticketgw/conversation"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// staffMail handles mail from a staff address (SPEC §2 flows 3–4): only when
// it is authenticated (SPEC §6) are its commands obeyed and its text relayed
// to the customer; otherwise it goes to the staff queue marked
// unauthenticated. Commands with a problem change nothing and get a short
// error reply.
func (p *Pipeline) staffMail(ctx context.Context, dec Decision, raw *Original, t domain.Ticket, found bool, signal string, log *slog.Logger) (Outcome, error) {
	m := dec.Msg
	key := dedupKey(m, raw)
	out := Outcome{Ticket: t, Decision: dec, Action: "staff"}
	if ok, why := conversation.Authenticated(m.Headers, m.From.Addr, p.Cfg.Staff.TrustedAuthservID); !ok {
		log.Warn("staff mail not authenticated: nothing relayed or obeyed", "why", why, "ticket", t.ID)
		out.Action = "unauthenticated"
		if found {
			ev := domain.Event{Kind: domain.EventNote, At: m.Received, MessageID: m.MessageID, Actor: m.From.Addr,
				Data: map[string]string{"unauthenticated": why}}
			if _, err := p.Store.(ConversationStore).AppendEvent(ctx, t.ID, ev, key); err != nil {
				return out, fmt.Errorf("note unauthenticated mail on %s: %w", t.ID, err)
			}
		}
		return out, p.forwardUnauthenticated(ctx, dec, raw, t, found, why)
	}
	cmds, body, problems := conversation.ParseCommands(m.Text)
	problems = append(problems, conversation.ContextProblems(cmds, found)...)
	for _, c := range cmds {
		// SPEC §6: the gateway's own addresses, and staff, are never a
		// customer.
		if c.Kind == conversation.For && (p.Cfg.IsOwnAddress(c.Addr.Addr) || p.Cfg.IsStaff(c.Addr.Addr)) {
			problems = append(problems, conversation.Problem{Line: c.Line, Text: "#for " + c.Arg,
				Problem: "#for needs the customer's address, not a staff address or one of the gateway's own"})
		}
	}
	if len(problems) > 0 {
		log.Info("staff commands rejected: nothing changed", "problems", len(problems), "ticket", t.ID)
		out.Action = "command-error"
		return out, p.commandError(ctx, dec, raw, t, found, problems)
	}
	if !found {
		for _, c := range cmds {
			if c.Kind == conversation.For {
				return p.openOnBehalf(ctx, dec, raw, c.Addr, body, log)
			}
		}
		log.Info("staff mail names no ticket: filed", "subject", m.Subject)
		return out, nil
	}
	return p.applyStaffReply(ctx, dec, raw, t, signal, cmds, body, log)
}

// openOnBehalf opens a ticket for a customer from a staff message starting
// with #for (after a phone call, say): the customer is the requester and
// gets the acknowledgement.
func (p *Pipeline) openOnBehalf(ctx context.Context, dec Decision, raw *Original, customer domain.Address, body string, log *slog.Logger) (Outcome, error) {
	cm := *dec.Msg
	cm.From, cm.Text, cm.Sender, cm.ReplyTo = customer, body, nil, nil
	cd, err := Decide(p.Cfg, p.Classifier, &cm, dec.Msg.Received, sla.NoUsage{})
	if err != nil {
		return Outcome{}, err
	}
	// #for opens a ticket even for a customer no contract matches (under the
	// catch-all T), and the customer is told.
	if cd.Class.AckReason == classify.ReasonUnknownSender || cd.Class.AckReason == classify.ReasonStaff {
		cd.Class.Ack, cd.Class.AckReason = true, ""
	}
	log.Info("ticket opened on a customer's behalf", "customer", customer.Addr, "staff", dec.Msg.From.Addr)
	out, err := p.openTicketRef(ctx, cd, raw, log.With("on_behalf_of", customer.Addr), "")
	out.Action = "on-behalf"
	return out, err
}

// applyStaffReply obeys an authenticated staff member's commands and relays
// the rest of the message to the customer, as one idempotent change.
func (p *Pipeline) applyStaffReply(ctx context.Context, dec Decision, raw *Original, t domain.Ticket, signal string, cmds []conversation.Command, body string, log *slog.Logger) (Outcome, error) {
	cs := p.Store.(ConversationStore)
	m := dec.Msg
	key := dedupKey(m, raw)
	ct := p.Cfg.ContractByID(t.Contract)
	note := conversation.HasNote(cmds)
	// Only the staff member's own words are relayed: a reply carrying
	// commands above the client's quote of the ticket mail relays nothing
	// (#close stays quiet, #priority does not echo the customer's text).
	relay := !note && conversation.HasOwnText(body)

	ev := domain.Event{Kind: domain.EventResponse, At: m.Received, MessageID: m.MessageID, Actor: m.From.Addr,
		Data: map[string]string{"thread": signal}}
	if !relay {
		ev.Kind = domain.EventNote
	}
	var cmdWords []string
	for _, c := range cmds {
		cmdWords = append(cmdWords, "#"+string(c.Kind)+strings.TrimRight(" "+c.Arg, " "))
	}
	if len(cmdWords) > 0 {
		ev.Data["commands"] = strings.Join(cmdWords, "; ")
	}
	if note {
		ev.Data["note"] = truncate(strings.TrimSpace(body), 2000)
	}

	ch := store.Change{Event: &ev, DedupKey: key}
	newStatus := domain.Status("")
	category, priority := t.Category, t.Priority
	for _, c := range cmds {
		switch c.Kind {
		case conversation.Resolve:
			newStatus, ev.Kind = domain.StatusResolved, domain.EventResolved
		case conversation.Close:
			newStatus, ev.Kind = domain.StatusClosed, domain.EventClosed
		case conversation.Pending:
			newStatus, ev.Kind = domain.StatusPending, domain.EventPending
		case conversation.Open:
			newStatus, ev.Kind = domain.StatusOpen, domain.EventReopened
		case conversation.SetCategory:
			category = c.Category
			ev.Data["category"] = string(c.Category)
		case conversation.SetPriority:
			priority = c.Priority
			ev.Data["priority"] = string(c.Priority)
		case conversation.Change:
			ev.Data["change"] = c.Arg
			if ev.Kind == domain.EventNote {
				ev.Kind = domain.EventChanged
			}
		case conversation.Schedule:
			ev.Data["schedule"] = c.Date.String()
			req := &store.IMACRequest{Candidates: []sla.Date{c.Date}, Policy: store.PolicyForce}
			if ct != nil && ct.IMAC != nil {
				req.MonthlyQuota, req.PerVisit = ct.IMAC.MonthlyQuota, ct.IMAC.PerVisit
			}
			ch.IMAC = req
		}
	}
	firstResponse := relay && t.FirstResponse.IsZero()
	retarget := category != t.Category || priority != t.Priority

	// Deadlines follow a change of category or priority, computed from the
	// ticket's own start and moved on by the time it was paused.
	var re domain.Ticket
	if retarget && ct != nil && ct.Calendar != nil {
		re = t
		re.Category, re.Priority = category, priority
		dl := sla.Deadlines{}
		if tg, ok := ct.SLA.Target(category, priority); ok {
			dl = sla.Compute(ct.Calendar, t.Opened, tg, ct.SLA.WarnAt)
		}
		re.ResponseDue, re.ResolutionDue, re.ResponseWarn, re.ResolutionWarn = shiftBy(ct.Calendar, t.PausedBusiness,
			dl.ResponseDue, dl.ResolutionDue, dl.ResponseWarn, dl.ResolutionWarn)
		ch.CancelTimers = append(ch.CancelTimers, store.ResponseWarn, store.ResponseBreach, store.ResolutionWarn, store.ResolutionBreach)
		ch.Timers = nil
		for _, tm := range timersFor(sla.Deadlines{ResponseDue: re.ResponseDue, ResolutionDue: re.ResolutionDue,
			ResponseWarn: re.ResponseWarn, ResolutionWarn: re.ResolutionWarn}) {
			if !t.FirstResponse.IsZero() && (tm.Kind == store.ResponseWarn || tm.Kind == store.ResponseBreach) {
				continue
			}
			ch.Timers = append(ch.Timers, tm)
		}
		if category == domain.IMAC && t.Category != domain.IMAC && ct.IMAC != nil && ch.IMAC == nil {
			_, noticeEnd, err := sla.NoticeEnd(ct.Calendar, t.Opened, *ct.IMAC)
			if err == nil {
				ch.IMAC = &store.IMACRequest{Candidates: ct.Calendar.ServiceDayCandidates(noticeEnd, ct.IMAC.ServiceDays, imacCandidateCount),
					MonthlyQuota: ct.IMAC.MonthlyQuota, PerVisit: ct.IMAC.PerVisit, Policy: ct.IMAC.OverQuota}
			}
		}
		if category != domain.IMAC && t.Category == domain.IMAC && t.IMACDate != "" {
			ch.ReleaseIMAC = true
		}
	}
	if newStatus == domain.StatusOpen && t.Status == domain.StatusPending && ct != nil && ct.Calendar != nil && !t.PausedAt.IsZero() {
		// Resuming moves the deadlines on by the paused business time:
		// those of a new category or priority if this message sets one.
		from := t
		if retarget {
			from = re
		}
		rt, timers := ResumeDeadlines(ct.Calendar, from, t.PausedAt, m.Received)
		re, ch.Timers = rt, timers
		retarget = true
	}
	if newStatus == domain.StatusOpen && (t.Status == domain.StatusResolved || t.Status == domain.StatusClosed) && !retarget {
		// Reopened: the deadlines still to come are watched again.
		ch.Timers = timersAfter(t, m.Received)
	}
	if firstResponse {
		ch.CancelTimers = appendMissing(ch.CancelTimers, store.ResponseWarn, store.ResponseBreach)
		ch.Timers = dropKinds(ch.Timers, store.ResponseWarn, store.ResponseBreach)
	}
	status := t.Status
	if newStatus != "" {
		status = newStatus
	}
	if status != domain.StatusOpen {
		// Pending, resolved or closed (now or still): no SLA clock runs,
		// whatever deadlines a new category or priority gives.
		ch.CancelTimers = appendMissing(ch.CancelTimers, store.ResponseWarn, store.ResponseBreach, store.ResolutionWarn, store.ResolutionBreach)
		ch.Timers = nil
	}
	ch.Mutate = func(x *domain.Ticket) error {
		if retarget {
			x.Category, x.Priority = re.Category, re.Priority
			if re.Category == "" {
				x.Category, x.Priority = category, priority
			}
			x.ResponseDue, x.ResolutionDue, x.ResponseWarn, x.ResolutionWarn = re.ResponseDue, re.ResolutionDue, re.ResponseWarn, re.ResolutionWarn
			x.PausedBusiness = max(x.PausedBusiness, re.PausedBusiness)
		}
		if firstResponse && x.FirstResponse.IsZero() {
			x.FirstResponse = m.Received
		}
		switch newStatus {
		case domain.StatusResolved, domain.StatusClosed:
			x.Status, x.Resolved, x.PausedAt = newStatus, m.Received, timeZero
		case domain.StatusPending:
			x.Status, x.PausedAt = newStatus, m.Received
		case domain.StatusOpen:
			x.Status, x.Resolved, x.PausedAt = newStatus, timeZero, timeZero
		}
		return nil
	}
	nt, applied, err := cs.UpdateTicket(ctx, t.ID, ch)
	if err != nil {
		return Outcome{}, fmt.Errorf("apply staff reply to %s: %w", t.ID, err)
	}
	if err := p.fault("after-update", m); err != nil {
		return Outcome{}, err
	}
	log = log.With("ticket", t.ID)
	if applied {
		log.Info("staff reply applied", "commands", ev.Data["commands"], "relay", relay, "first_response", firstResponse)
	}
	out := Outcome{Ticket: nt, Decision: dec, Action: "staff-reply"}
	var entries []store.OutboxEntry
	var ids []string
	if relay {
		if e, id, err := p.composeRelay(ctx, dec, nt, raw); err != nil {
			// Deterministic (an encrypted or malformed reply, a bad
			// address on the ticket): the commands stand, staff are told
			// in the log; retrying would hold the mailbox.
			log.Error("staff reply not relayed: it cannot be composed", "err", err)
		} else {
			entries, ids = append(entries, e), append(ids, id)
		}
	}
	if newStatus == domain.StatusResolved {
		if e, id, err := p.composeResolved(dec, nt); err != nil {
			log.Error("resolved notice not sent: it cannot be composed", "err", err)
		} else {
			entries, ids = append(entries, e), append(ids, id)
		}
	}
	if m.MessageID != "" {
		ids = append(ids, m.MessageID)
	}
	return out, p.queue(ctx, m, nt.ID, ids, entries)
}

var timeZero time.Time

// shiftBy moves deadlines on by the business time a ticket was paused.
func shiftBy(cal *sla.Calendar, paused time.Duration, rd, sd, rw, sw time.Time) (time.Time, time.Time, time.Time, time.Time) {
	f := func(t time.Time) time.Time {
		if t.IsZero() || paused <= 0 {
			return t
		}
		if moved := cal.AddBusiness(t, paused); !moved.IsZero() {
			return moved
		}
		return t
	}
	return f(rd), f(sd), f(rw), f(sw)
}

func appendMissing(list []string, kinds ...string) []string {
	for _, k := range kinds {
		if !slices.Contains(list, k) {
			list = append(list, k)
		}
	}
	return list
}

func dropKinds(ts []store.Timer, kinds ...string) []store.Timer {
	var out []store.Timer
	for _, t := range ts {
		keep := true
		for _, k := range kinds {
			keep = keep && t.Kind != k
		}
		if keep {
			out = append(out, t)
		}
	}
	return out
}

// staffName is how a staff member is shown to the customer.
func staffName(a domain.Address) string {
	if a.Name != "" {
		return a.Name
	}
	if i := strings.IndexByte(a.Addr, '@'); i > 0 {
		return a.Addr[:i]
	}
	return a.Addr
}

// relayRecipients are the requester and the people the customer copied,
// never the gateway's own or staff addresses.
func relayRecipients(cfg *rules.Config, t domain.Ticket) (to, cc []domain.Address) {
	to = []domain.Address{t.Requester}
	for _, a := range t.Cc {
		if cfg.IsOwnAddress(a.Addr) || cfg.IsStaff(a.Addr) || strings.EqualFold(a.Addr, t.Requester.Addr) {
			continue
		}
		cc = append(cc, a)
	}
	return to, cc
}

// composeRelay composes a staff reply relayed to the customer. A large
// original is referred to rather than copied (byReference).
func (p *Pipeline) composeRelay(ctx context.Context, dec Decision, t domain.Ticket, raw *Original) (store.OutboxEntry, string, error) {
	m := dec.Msg
	id, err := notify.NewMessageID("relay", t.ID, domainOf(p.Cfg.Service.Address))
	if err != nil {
		return store.OutboxEntry{}, "", err
	}
	to, cc := relayRecipients(p.Cfg, t)
	refs := nonEmpty(t.MessageID)
	rm := notify.RelayMail{
		From: domain.Address{Name: staffName(m.From) + " (" + p.Cfg.Service.Name + ")", Addr: p.Cfg.Service.Address},
		To:   to, Cc: cc, ReplyTo: p.Cfg.Service.Address,
		Subject:   "Re: " + conversation.TagSubject(t.Subject, t.ID),
		MessageID: id, InReplyTo: t.MessageID, References: refs,
		LoopMarker: p.Cfg.Service.Address, TicketID: t.ID, Date: p.Now(),
		Original: raw.Reader(),
		EditText: editStaffText,
	}
	key := "relay:" + t.ID + ":" + dedupKey(m, raw)
	if ref := byReference(ctx, m, raw); ref != nil {
		// Composed once to nowhere: it fails now if it would fail later,
		// and gives the envelope (To and Cc without duplicates).
		env, err := notify.WriteRelay(io.Discard, rm)
		if err != nil {
			return store.OutboxEntry{}, "", fmt.Errorf("compose relay: %w", err)
		}
		e := store.OutboxEntry{Key: key, Kind: "relay", Ticket: t.ID, From: env.From, To: env.To}
		e, err = referenceEntry(e, ref, relayRecipe(rm))
		return e, id, err
	}
	out, env, err := notify.ComposeRelay(rm)
	if err != nil {
		return store.OutboxEntry{}, "", fmt.Errorf("compose relay: %w", err)
	}
	return store.OutboxEntry{Key: key, Kind: "relay", Ticket: t.ID, From: env.From, To: env.To, Raw: out}, id, nil
}

// editStaffText removes from a staff reply what the customer must not see:
// the command lines at the top and the quoted copy of our ticket summary.
func editStaffText(mediaType, text string) string {
	if mediaType == "text/html" {
		cmds, _, _ := conversation.ParseCommands(htmlToLines(text))
		out, removed := conversation.StripCommandLinesHTML(text, len(cmds))
		if removed < len(cmds) {
			return "" // the text part carries the message; see notify.RelayMail
		}
		return conversation.StripQuotedSummaryHTML(out)
	}
	_, body, _ := conversation.ParseCommands(text)
	return conversation.StripQuotedSummary(body)
}

// htmlToLines is a rough text rendering used only to count command lines.
func htmlToLines(s string) string {
	r := strings.NewReplacer("<br>", "\n", "<br/>", "\n", "<br />", "\n", "</p>", "\n", "</div>", "\n")
	s = r.Replace(s)
	var b strings.Builder
	in := false
	for _, c := range s {
		switch {
		case c == '<':
			in = true
		case c == '>':
			in = false
		case !in:
			b.WriteRune(c)
		}
	}
	return html.UnescapeString(b.String())
}

func (p *Pipeline) composeResolved(dec Decision, t domain.Ticket) (store.OutboxEntry, string, error) {
	ct := p.Cfg.ContractByID(t.Contract)
	loc := dec.Loc
	if ct != nil && ct.Calendar != nil {
		loc = ct.Calendar.Loc
	}
	window := p.Cfg.Limits.ReopenWindow
	data := notify.ResolvedData{Base: base(p.Cfg, loc), TicketID: t.ID, Tag: "[" + t.ID + "]", Subject: t.Subject,
		CustomerName: t.Requester.Name, Resolved: dec.Msg.Received}
	if window > 0 {
		data.ReopenUntil = dec.Msg.Received.Add(window)
	}
	lang := Language(ct, &domain.Message{Subject: t.Subject})
	r, err := p.Templates.Render(notify.KindResolved, lang, data)
	if err != nil {
		return store.OutboxEntry{}, "", fmt.Errorf("render resolved notice: %w", err)
	}
	id, err := notify.NewMessageID("resolved", t.ID, domainOf(p.Cfg.Service.Address))
	if err != nil {
		return store.OutboxEntry{}, "", err
	}
	to, cc := relayRecipients(p.Cfg, t)
	raw, env, err := notify.ComposeAck(notify.AckMail{
		From: p.supportAddress(), To: to[0], Cc: cc, Subject: r.Subject, Text: r.Text, HTML: r.HTML,
		MessageID: id, InReplyTo: t.MessageID, References: nonEmpty(t.MessageID),
		LoopMarker: p.Cfg.Service.Address, TicketID: t.ID, Date: p.Now(), Lang: lang,
	})
	if err != nil {
		return store.OutboxEntry{}, "", fmt.Errorf("compose resolved notice: %w", err)
	}
	key := "resolved:" + t.ID + ":" + resolvedKey(dec.Msg)
	return store.OutboxEntry{Key: key, Kind: "resolved", Ticket: t.ID, From: env.From, To: env.To, Raw: raw}, id, nil
}

// commandError tells a staff member why their commands were not applied.
func (p *Pipeline) commandError(ctx context.Context, dec Decision, raw *Original, t domain.Ticket, found bool, problems []conversation.Problem) error {
	m := dec.Msg
	data := notify.CommandErrorData{Base: base(p.Cfg, dec.Loc), Subject: m.Subject}
	if found {
		data.TicketID, data.Tag = t.ID, "["+t.ID+"]"
	}
	for _, pr := range problems {
		data.Problems = append(data.Problems, notify.CommandProblem{Line: pr.Text, Problem: pr.Problem})
	}
	lang := staffLanguage(p.Cfg.ContractByID(t.Contract))
	r, err := p.Templates.Render(notify.KindCommandError, lang, data)
	if err != nil {
		return fmt.Errorf("render command error: %w", err)
	}
	id, err := notify.NewMessageID("cmderr", t.ID, domainOf(p.Cfg.Service.Address))
	if err != nil {
		return err
	}
	out, env, err := notify.ComposeAck(notify.AckMail{
		From: p.supportAddress(), To: m.From, Subject: r.Subject, Text: r.Text, HTML: r.HTML,
		MessageID: id, InReplyTo: m.MessageID, References: references(m),
		LoopMarker: p.Cfg.Service.Address, TicketID: t.ID, Date: p.Now(), Lang: lang,
	})
	if err != nil {
		return fmt.Errorf("compose command error: %w", err)
	}
	_, err = p.Store.Enqueue(ctx, store.OutboxEntry{Key: "cmderr:" + dedupKey(m, raw), Kind: "command-error", Ticket: t.ID,
		From: env.From, To: env.To, Raw: out}, p.Now())
	return err
}

// forwardUnauthenticated sends staff mail that failed the authentication
// check to the staff queue, marked, so a person can look at it.
func (p *Pipeline) forwardUnauthenticated(ctx context.Context, dec Decision, raw *Original, t domain.Ticket, found bool, why string) error {
	m := dec.Msg
	var e store.OutboxEntry
	if found {
		ti, err := notify.NewTicketInfo(&t, contractName(p.Cfg.ContractByID(t.Contract)), dec.Loc)
		if err != nil {
			return err
		}
		r, err := p.Templates.Render(notify.KindForward, staffLanguage(p.Cfg.ContractByID(t.Contract)), notify.ForwardData{
			Base: base(p.Cfg, dec.Loc), TicketInfo: ti, Requester: t.Requester, From: m.From, Cc: t.Cc,
			Status: t.Status, Rules: t.Rules, Tags: t.Tags, Unauthenticated: true, AckReason: "unauthenticated",
		})
		if err != nil {
			return fmt.Errorf("render unauthenticated forward: %w", err)
		}
		e, _, err = p.forwardEntry(ctx, m, raw, r.Subject, r.Text+"\n"+why+"\n", r.HTML, t.ID)
		if err != nil {
			return err
		}
	} else {
		var err error
		e, _, err = p.forwardEntry(ctx, m, raw, "[UNAUTHENTICATED staff mail] "+m.Subject,
			fmt.Sprintf("Mail from the staff address %s failed the authentication check (%s).\nNothing in it was relayed or obeyed.\n", m.From.Addr, why), "", "")
		if err != nil {
			return err
		}
	}
	e.Key = "unauth:" + dedupKey(m, raw)
	_, err := p.Store.Enqueue(ctx, e, p.Now())
	return err
}

// forwardEntry composes a staff-queue copy of raw with a summary.
func (p *Pipeline) forwardEntry(ctx context.Context, m *domain.Message, raw *Original, subject, text, htmlText, ticketID string) (store.OutboxEntry, string, error) {
	id, err := notify.NewMessageID("fwd", ticketID, domainOf(p.Cfg.Service.Address))
	if err != nil {
		return store.OutboxEntry{}, "", err
	}
	e, err := forwardOut(ctx, m, raw, notify.ForwardMail{
		From: domain.Address{Name: staffName(m.From) + " via " + p.Cfg.Service.Name, Addr: p.Cfg.Service.Address},
		To:   p.Cfg.Staff.Queue, ReplyTo: p.Cfg.Service.Address, Subject: subject,
		HeaderText: text, HeaderHTML: htmlText,
		MessageID: id, InReplyTo: m.MessageID, References: references(m),
		LoopMarker: p.Cfg.Service.Address, TicketID: cmp.Or(ticketID, NoTicketID), Date: p.Now(),
	}, store.OutboxEntry{Kind: "forward", Ticket: ticketID})
	return e, id, err
}

// resolvedKey identifies the staff message that resolved a ticket: its
// Message-ID, or its content (subject, date and text) when it has none, so a
// later #resolve of the same ticket after a reopen is a new notice.
func resolvedKey(m *domain.Message) string {
	if m.MessageID != "" {
		return "mid:" + strings.ToLower(m.MessageID)
	}
	return DedupKey(m, []byte(m.Subject+"\x00"+m.Received.UTC().Format(time.RFC3339Nano)+"\x00"+m.Text))
}

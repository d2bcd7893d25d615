// Package classify evaluates the configured rules (SPEC §3) against a parsed
// message: it finds the sender's contract (exact address first, then the
// domain and its parent domains), runs the rules in order with their merge
// semantics, decides whether the message may be acknowledged (SPEC §6), and
// records a trace of every rule tried and why it matched or not.
//
// A Classifier is built once per configuration and is safe for concurrent
// use; it never reads the clock or any state.
package classify

import (
	"slices"
	"strings"
	"sync"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
)

// Ack reasons beyond the automatic-mail kinds of domain.AutoKind.
const (
	ReasonRule          = "rule"
	ReasonDrop          = "drop"
	ReasonUnknownSender = "unknown-sender"
	ReasonStaff         = "staff"
	ReasonNoSender      = "no-sender"
)

// Classifier classifies messages under one configuration.
type Classifier struct {
	cfg      *rules.Config
	byAddr   map[string]*rules.Contract
	byDomain map[string]*rules.Contract
	ownAddrs map[string]bool
	compiled []compiledRule
	fs       *fieldSet
	pool     sync.Pool // of *fields
}

type compiledRule struct {
	name string
	rule *rules.Rule
	cond *node
	// A condition that is a conjunction of operator tests (most are: one
	// test, or a few on different fields) is held as the list of its tests
	// too, evaluated without walking the tree. The lists of all rules share
	// one array, in rule order.
	flat  bool
	tests []opTest
}

func (cr *compiledRule) eval(f *fields) (bool, string) {
	if cr.flat {
		return evalAll(cr.tests, f)
	}
	return cr.cond.eval(f)
}

// New builds a classifier for cfg. cfg must have been validated by the rules
// loader.
func New(cfg *rules.Config) *Classifier {
	c := &Classifier{
		cfg:      cfg,
		byAddr:   map[string]*rules.Contract{},
		byDomain: map[string]*rules.Contract{},
		ownAddrs: map[string]bool{},
		fs:       newFieldSet(),
	}
	for _, ct := range cfg.Contracts {
		for _, a := range ct.Addresses {
			c.byAddr[strings.ToLower(a)] = ct
		}
		for _, d := range ct.Domains {
			c.byDomain[strings.ToLower(strings.TrimPrefix(d, "@"))] = ct
		}
	}
	for _, a := range cfg.Addresses() {
		c.ownAddrs[strings.ToLower(a)] = true
	}
	var tests []opTest
	var ends []int
	for _, r := range cfg.Rules {
		cr := compiledRule{name: r.Name, rule: r, cond: compile(r.When, c.fs)}
		if t, ok := cr.cond.conjunction(tests); ok {
			tests, cr.flat = t, true
		}
		c.compiled = append(c.compiled, cr)
		ends = append(ends, len(tests))
	}
	start := 0
	for i := range c.compiled {
		if c.compiled[i].flat {
			c.compiled[i].tests = tests[start:ends[i]:ends[i]]
		}
		start = ends[i]
	}
	c.fs.build()
	c.pool.New = func() any { return newFields(c.fs) }
	return c
}

// Contract returns the contract of a sender address and how it matched
// ("address", "domain" or "subdomain"), or nil.
func (c *Classifier) Contract(addr string) (*rules.Contract, string) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if ct, ok := c.byAddr[addr]; ok {
		return ct, "address"
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return nil, ""
	}
	dom := strings.TrimSuffix(addr[at+1:], ".")
	if ct, ok := c.byDomain[dom]; ok {
		return ct, "domain"
	}
	for {
		dot := strings.IndexByte(dom, '.')
		if dot < 0 {
			return nil, ""
		}
		dom = dom[dot+1:]
		if ct, ok := c.byDomain[dom]; ok {
			return ct, "subdomain"
		}
	}
}

// IsOwn reports whether addr is one of the gateway's own addresses.
func (c *Classifier) IsOwn(addr string) bool {
	return c.ownAddrs[strings.ToLower(strings.TrimSpace(addr))]
}

// Classify runs contract matching, the rules and the acknowledgement decision
// on m. It never fails: a message nothing matches gets the defaults (request,
// normal).
func (c *Classifier) Classify(m *domain.Message) domain.Classification {
	res := domain.Classification{Rules: []string{}}
	// The steps are written in place: copying whole TraceSteps in costs
	// more, in write barriers, than setting their fields.
	trace := make([]domain.TraceStep, len(c.compiled))
	n := 0
	var contract *rules.Contract
	if m.From.Addr != "" {
		contract, res.MatchedBy = c.Contract(m.From.Addr)
	}
	if contract != nil {
		res.Contract = contract.ID
	}

	// The message's values, folded values and keyword hits are computed
	// as rules need them, in buffers reused from message to message.
	f := c.pool.Get().(*fields)
	f.m, f.contract = m, res.Contract
	var ack *bool
	for i := range c.compiled {
		cr := &c.compiled[i]
		ok, why := cr.eval(f)
		step := &trace[n]
		n++
		step.Rule, step.Matched, step.Why = cr.name, ok, why
		if !ok {
			continue
		}
		res.Rules = append(res.Rules, cr.name)
		set := map[string]string{}
		a := cr.rule.Set
		if a.Category != "" && res.Category == "" {
			res.Category = a.Category
			set["category"] = string(a.Category)
		}
		if a.Priority != "" && res.Priority == "" {
			res.Priority = a.Priority
			set["priority"] = string(a.Priority)
		}
		for _, tg := range a.Tags {
			if !slices.Contains(res.Tags, tg) {
				res.Tags = append(res.Tags, tg)
				set["tags"] = strings.TrimPrefix(set["tags"]+","+tg, ",")
			}
		}
		if a.Ack != nil && ack == nil {
			v := *a.Ack
			ack = &v
			set["ack"] = boolString(v)
		}
		if a.Drop && !res.Drop {
			res.Drop = true
			set["drop"] = "true"
		}
		if len(set) > 0 {
			step.Set = set
		}
		step.Stopped = !cr.rule.Continue
		if !cr.rule.Continue {
			break
		}
	}
	res.Trace = trace[:n]
	f.reset()
	c.pool.Put(f)
	if res.Category == "" {
		res.Category = domain.Request
	}
	if res.Priority == "" {
		res.Priority = domain.Normal
	}

	res.Ack, res.AckReason = c.ackDecision(m, contract, ack, res.Drop)
	return res
}

// ackDecision applies SPEC §6 in order of precedence: automatic mail and our
// own mail are never acknowledged whatever the rules say; then staff; then
// the rules' drop and ack: false; then unknown senders.
func (c *Classifier) ackDecision(m *domain.Message, contract *rules.Contract, ack *bool, drop bool) (bool, string) {
	if m.Auto != domain.Human {
		return false, string(m.Auto)
	}
	for _, v := range m.HeaderValues(domain.LoopHeader) {
		for _, a := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '<' || r == '>' }) {
			if c.IsOwn(a) {
				return false, string(domain.Loop)
			}
		}
	}
	if m.From.Addr == "" {
		return false, ReasonNoSender
	}
	if c.IsOwn(m.From.Addr) {
		return false, string(domain.Self)
	}
	if c.cfg.IsStaff(m.From.Addr) {
		return false, ReasonStaff
	}
	if drop {
		return false, ReasonDrop
	}
	if ack != nil && !*ack {
		return false, ReasonRule
	}
	if contract == nil && c.cfg.UnknownSenders != "ticket" {
		return false, ReasonUnknownSender
	}
	return true, ""
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

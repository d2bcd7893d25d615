package rules

import "strings"

// ContractByID returns the contract with that id, or nil.
func (c *Config) ContractByID(id string) *Contract {
	for _, k := range c.Contracts {
		if k.ID == id {
			return k
		}
	}
	return nil
}

// ContractByPrefix returns the contract whose ticket prefix is p (compared
// without case, as ticket tags are recognised), or nil.
func (c *Config) ContractByPrefix(p string) *Contract {
	for _, k := range c.Contracts {
		if strings.EqualFold(k.Prefix, p) {
			return k
		}
	}
	return nil
}

// ContractFor returns the contract that claims a sender address: an exact
// match.addresses entry wins; otherwise the longest match.domains entry
// equal to the address's domain or a parent of it (acme.co.il claims
// branch.acme.co.il). It returns nil for the gateway's own addresses and for
// senders no contract claims.
func (c *Config) ContractFor(addr string) *Contract {
	a := normAddr(addr)
	_, dom, ok := strings.Cut(a, "@")
	if !ok || dom == "" || c.IsOwnAddress(a) {
		return nil
	}
	for _, k := range c.Contracts {
		for _, x := range k.Addresses {
			if x == a {
				return k
			}
		}
	}
	var best *Contract
	bestLen := 0
	for _, k := range c.Contracts {
		for _, d := range k.Domains {
			if (dom == d || strings.HasSuffix(dom, "."+d)) && len(d) > bestLen {
				best, bestLen = k, len(d)
			}
		}
	}
	return best
}

// Addresses returns the gateway's own addresses, lower-cased and without
// duplicates: the service address, every mailbox address, the staff queue
// and the escalation address. Mail from them is never acknowledged and mail
// is never relayed to them.
func (c *Config) Addresses() []string {
	var out []string
	add := func(a string) {
		a = normAddr(a)
		if a == "" {
			return
		}
		for _, x := range out {
			if x == a {
				return
			}
		}
		out = append(out, a)
	}
	add(c.Service.Address)
	for _, mb := range c.Mailboxes {
		add(mb.Address)
	}
	add(c.Staff.Queue)
	add(c.Staff.Escalation)
	return out
}

// IsOwnAddress reports whether addr (compared without case) is one of
// Addresses.
func (c *Config) IsOwnAddress(addr string) bool {
	a := normAddr(addr)
	if a == "" {
		return false
	}
	if strings.EqualFold(a, c.Service.Address) || strings.EqualFold(a, c.Staff.Queue) || strings.EqualFold(a, c.Staff.Escalation) {
		return true
	}
	for _, mb := range c.Mailboxes {
		if strings.EqualFold(a, mb.Address) {
			return true
		}
	}
	return false
}

// IsStaff reports whether addr matches staff.addresses (an exact address or
// *@domain, compared without case). The gateway's own addresses are never
// staff (SPEC §6), even when a pattern matches them.
func (c *Config) IsStaff(addr string) bool {
	a := normAddr(addr)
	_, dom, ok := strings.Cut(a, "@")
	if !ok || c.IsOwnAddress(a) {
		return false
	}
	for _, p := range c.Staff.Addresses {
		if p == a || (strings.HasPrefix(p, "*@") && p[2:] == dom) {
			return true
		}
	}
	return false
}

// normAddr lower-cases an address and strips white space and angle
// brackets.
func normAddr(a string) string {
	a = strings.TrimSpace(a)
	a = strings.TrimPrefix(a, "<")
	a = strings.TrimSuffix(a, ">")
	return strings.ToLower(strings.TrimSpace(a))
}

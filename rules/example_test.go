package rules_test

import (
	"fmt"

	"github.com/northwind-it/ticketgw/rules"
)

// Every mistake in a file is reported at once, each with file:line:col.
func ExampleParse() {
	const file = `
service: {address: support@msp.example}
mailbox: {host: imap.msp.example, password: "${IMAP_PASSWORD}", poll_intervall: 30s}
smtp: {host: smtp.msp.example}
staff: {queue: helpdesk@msp.example}
calendars:
  office: {timezone: Europe/London, week: {mon: "09:00-17:00", tue: "9-5"}}
contracts:
  - {id: acme, match: {domains: [acme.example]}, calendar: ofice}
rules:
  - {name: outage, when: {subject: {matches: "(down"}}, set: {category: fault, priority: hgih}}
  - {name: default, set: {category: request}}
`
	noEnv := func(string) (string, bool) { return "", false }
	_, err := rules.Parse("gateway.yaml", []byte(file), rules.LoadOptions{Getenv: noEnv})
	fmt.Println(err)
	// Output:
	// gateway.yaml:3:45: mailbox.password: environment variable IMAP_PASSWORD is not set (write ${IMAP_PASSWORD:-default} for a default)
	// gateway.yaml:3:65: mailbox: unknown key "poll_intervall" (did you mean "poll_interval"?)
	// gateway.yaml:7:69: calendars.office.week.tue: invalid hours "9-5": window "9-5": time "9": want HH:MM
	// gateway.yaml:9:60: contracts[0].calendar: unknown calendar "ofice" (did you mean "office"?): expected office
	// gateway.yaml:11:46: rules[0].when.subject.matches: invalid regexp: error parsing regexp: missing closing ): `(down`
	// gateway.yaml:11:90: rules[0].set.priority: unknown priority "hgih" (did you mean "high"?): expected urgent, high, normal or low
}

// A loaded Config answers the questions every stage asks about addresses.
func ExampleConfig_ContractFor() {
	const file = `
service: {address: support@msp.example}
mailbox: {host: imap.msp.example}
smtp: {host: smtp.msp.example}
staff: {addresses: ["*@msp.example"], queue: helpdesk@msp.example}
calendars: {office: {timezone: UTC, week: {mon: "09:00-17:00"}}}
contracts:
  - {id: acme, match: {domains: [acme.example], addresses: [boss@gmail.example]}}
rules:
  - {name: default, set: {category: request}}
`
	cfg, err := rules.Parse("gateway.yaml", []byte(file), rules.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range []string{"it@branch.acme.example", "Boss@Gmail.example", "dana@msp.example", "helpdesk@msp.example"} {
		id := "-"
		if c := cfg.ContractFor(a); c != nil {
			id = c.ID
		}
		fmt.Printf("%-24s contract=%s staff=%v own=%v\n", a, id, cfg.IsStaff(a), cfg.IsOwnAddress(a))
	}
	// Output:
	// it@branch.acme.example   contract=acme staff=false own=false
	// Boss@Gmail.example       contract=acme staff=false own=false
	// dana@msp.example         contract=- staff=true own=false
	// helpdesk@msp.example     contract=- staff=false own=true
}

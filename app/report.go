package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/northwind-it/ticketgw/report"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
)

const reportUsage = "qbr -c FILE (--contract ID | --all) --quarter YYYY-Qn [-o FILE|DIR] [--csv FILE] [--lang he|en] [--as-of TIME] [--send]"

// cmdReport is `gateway report qbr`: the quarterly review of one contract
// (or of every contract with --all) from the tickets and events in Redis.
// --send queues it in the outbox for the contract's representative and
// customer_contacts, once per contract and quarter (service.QBRKey): the
// running gateway's outbox sender mails it.
func cmdReport(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] != "qbr" {
		fmt.Fprintf(env.Stderr, "usage: gateway report %s\n", reportUsage)
		return errUsage
	}
	fs := newFlagSet("report", env.Stderr, reportUsage)
	cfgPath := fs.String("c", "gateway.yaml", "configuration `file`")
	contract := fs.String("contract", "", "contract `id`")
	all := fs.Bool("all", false, "every contract (-o names a directory)")
	quarter := fs.String("quarter", "", "the quarter, e.g. 2026-Q3 (default: the last complete quarter)")
	out := fs.String("o", "", "write the HTML report to `file` (with --all: a directory); default stdout")
	csvOut := fs.String("csv", "", "also write the figures as CSV to `file` (with --all: a directory)")
	lang := fs.String("lang", "", "report language he|en (default: the contract's)")
	asOf := fs.String("as-of", "", "describe the state at `TIME` (RFC 3339 or YYYY-MM-DDTHH:MM); default now")
	send := fs.Bool("send", false, "mail it to the contract's representative and customer_contacts through the outbox (once per contract and quarter; the running gateway sends it); without -o nothing is written to stdout")
	rest, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return errUsage
	}
	if len(rest) > 0 || (*contract == "") == !*all {
		fmt.Fprintln(env.Stderr, "gateway report: give exactly one of --contract ID or --all")
		fs.Usage()
		return errUsage
	}
	now := env.Now()
	var q report.Quarter
	if *quarter == "" {
		q = report.QuarterOf(sla.DateOf(now)).Prev()
	} else if q, err = report.ParseQuarter(*quarter); err != nil {
		return fmt.Errorf("--quarter: %w", err)
	}
	cfg, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	var contracts []*rules.Contract
	if *all {
		contracts = cfg.Contracts
	} else {
		c := cfg.ContractByID(*contract)
		if c == nil {
			return fmt.Errorf("no contract %q in %s", *contract, *cfgPath)
		}
		contracts = []*rules.Contract{c}
	}
	st, closeFn, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	if *all {
		for _, d := range []string{*out, *csvOut} {
			if d != "" {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return fmt.Errorf("create report directory: %w", err)
				}
			}
		}
	}
	var notMailed []string
	for _, c := range contracts {
		at := now
		if *asOf != "" {
			if at, err = parseAt(*asOf, c.Calendar.Loc); err != nil {
				return fmt.Errorf("--as-of: %w", err)
			}
		}
		tickets, err := report.Load(ctx, st, c.ID)
		if err != nil {
			return fmt.Errorf("contract %s: %w", c.ID, err)
		}
		r, err := report.Build(report.Input{Contract: c, Quarter: q, Tickets: tickets, AsOf: at})
		if err != nil {
			return err
		}
		files, err := service.RenderQBR(r, *lang)
		if err != nil {
			return err
		}
		htmlPath, csvPath := *out, *csvOut
		if *all {
			name := fmt.Sprintf("qbr-%s-%s", c.ID, q)
			if htmlPath != "" {
				htmlPath = filepath.Join(htmlPath, name+".html")
			}
			if csvPath != "" {
				csvPath = filepath.Join(csvPath, name+".csv")
			}
		}
		switch {
		case htmlPath != "":
			if err := os.WriteFile(htmlPath, files.HTML, 0o644); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
		case !*send:
			if _, err := env.Stdout.Write(files.HTML); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
		}
		if csvPath != "" {
			if err := os.WriteFile(csvPath, files.CSV, 0o644); err != nil {
				return fmt.Errorf("write report csv: %w", err)
			}
		}
		if htmlPath != "" {
			fmt.Fprintf(env.Stderr, "%s %s: %d tickets, %d findings -> %s\n", c.ID, q, r.Total.Count, len(r.Findings), htmlPath)
		}
		if *send {
			if _, _, ok := service.QBRRecipients(c); !ok {
				fmt.Fprintf(env.Stderr, "%s %s: not mailed: %v\n", c.ID, q, service.ErrNoRecipients)
				notMailed = append(notMailed, c.ID)
				continue
			}
			e, added, err := service.EnqueueQBR(ctx, st, cfg, c, files, now)
			if err != nil {
				return err
			}
			if added {
				fmt.Fprintf(env.Stderr, "%s %s: queued for %s (outbox key %s); the running gateway sends it\n", c.ID, q, strings.Join(e.To, ", "), e.Key)
			} else {
				fmt.Fprintf(env.Stderr, "%s %s: already queued or sent (outbox key %s): not queued again\n", c.ID, q, e.Key)
			}
		}
	}
	if len(notMailed) > 0 {
		return fmt.Errorf("not mailed, for want of a representative or customer_contacts: %s", strings.Join(notMailed, ", "))
	}
	return nil
}

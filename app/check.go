package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
)

// loadConfig loads and validates a configuration file the way `run` does,
// printing every error as file:line:col: message.
func loadConfig(path string, env Env) (*rules.Config, error) {
	cfg, err := rules.Load(path, rules.LoadOptions{Getenv: env.Getenv})
	if err != nil {
		var errs rules.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(env.Stderr, e.Error())
			}
			return nil, errSilentFailure
		}
		return nil, err
	}
	return cfg, nil
}

// loadTemplates loads the built-in templates with the config's overrides and
// renders each against sample data (so a broken override fails here, not at
// send time). Template errors are printed one per line as file:line:col:
// message, like configuration errors.
func loadTemplates(cfg *rules.Config, env Env) (*notify.Templates, error) {
	t, err := notify.LoadTemplates(cfg.Templates.Dir)
	if err != nil {
		if printTemplateErrors(env.Stderr, err) {
			return nil, errSilentFailure
		}
		return nil, err // notify's own message starts with "load templates:"
	}
	if err := t.Check(); err != nil {
		if printTemplateErrors(env.Stderr, err) {
			return nil, errSilentFailure
		}
		return nil, fmt.Errorf("check templates: %w", err)
	}
	return t, nil
}

// printTemplateErrors prints err, a *notify.TemplateError or several joined,
// one error per line. It prints nothing and returns false when any part of
// err is another kind of error (a directory that cannot be read).
func printTemplateErrors(w io.Writer, err error) bool {
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	lines := make([]string, 0, len(list))
	for _, e := range list {
		var te *notify.TemplateError
		if !errors.As(e, &te) {
			return false
		}
		lines = append(lines, te.Error())
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return len(lines) > 0
}

func cmdCheck(_ context.Context, args []string, env Env) error {
	fs := newFlagSet("check", env.Stderr, "-c FILE")
	cfgPath := fs.String("c", "gateway.yaml", "configuration `file`")
	if _, err := parseInterleaved(fs, args); err != nil {
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	// The loader checks the URL's form; the client options in its query
	// are the Redis client's, checked here as `run` will.
	if _, err := service.RedisOptions(cfg.Redis); err != nil {
		fmt.Fprintf(env.Stderr, "%s: redis.url: %v\n", *cfgPath, err)
		return errSilentFailure
	}
	if _, err := loadTemplates(cfg, env); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%s, %s, %s, %s)\n", *cfgPath,
		count(len(cfg.Contracts), "contract", "contracts"), count(len(cfg.Calendars), "calendar", "calendars"),
		count(len(cfg.Rules), "rule", "rules"), count(len(cfg.Mailboxes), "mailbox", "mailboxes"))
	return nil
}

// count writes n and the noun in the right number.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

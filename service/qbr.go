package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/northwind-it/ticketgw/report"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// QBRStore is what the quarterly scheduler needs of the state (implemented
// by *store.Store).
type QBRStore interface {
	report.Source
	QBRQueue
	ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
	ExtendClaim(ctx context.Context, key string, ttl time.Duration) error
	ReleaseClaim(ctx context.Context, key string) error
}

var _ QBRStore = (*store.Store)(nil)

// Actions reported in QBROutcome.Action.
const (
	QBRQueued       = "queued"        // made and queued for mailing
	QBRAlreadySent  = "already-sent"  // made, but the outbox had it (queued or sent before, e.g. by `gateway report qbr --send`)
	QBRWritten      = "written"       // made and written to reports.qbr.dir only (send: false)
	QBRNoRecipients = "no-recipients" // made, but the contract has nobody to mail it to
	QBRFailed       = "failed"        // not made; the claim was released for a later round
)

// QBROutcome says what the scheduler did with one contract's review.
type QBROutcome struct {
	Contract string
	Quarter  string    // e.g. 2026-Q3
	Due      time.Time // when it was due, in the contract calendar's zone
	Action   string
	Key      string   // QBRKey: the claim and the outbox key
	Files    []string // written to reports.qbr.dir
	Err      error    // with QBRFailed
}

// Scheduler defaults.
const (
	DefaultQBRInterval = 5 * time.Minute
	DefaultQBRCatchUp  = 7 * 24 * time.Hour
	DefaultQBRLease    = 15 * time.Minute
	DefaultQBRKeep     = 100 * 24 * time.Hour
)

// QBRScheduler makes the quarterly reviews of `reports.qbr: {schedule:
// quarterly}` (SPEC §8): on the first business day of each quarter in each
// contract's own calendar, from reports.qbr.hour (default: that day's first
// opening), it builds the review of the quarter just ended, as of that
// instant, and queues it for the contract's representative and
// customer_contacts (send: true) and/or writes it to reports.qbr.dir. A
// review missed because no gateway ran then is made when one runs again,
// within CatchUp of its due instant; later it is left to `gateway report`.
//
// Each review is made once however many instances run: the instance that
// claims QBRKey first (store.ClaimOnce, SET NX) makes it, holding the claim
// for Lease while it works and for Keep once done; one that fails releases
// the claim for the next round, one that dies leaves it to expire after
// Lease. The outbox key (also QBRKey) keeps the mail single even when two
// instances overlap after an expired claim, or `gateway report qbr --send`
// queued it first.
type QBRScheduler struct {
	Cfg   *rules.Config
	Store QBRStore
	Log   *slog.Logger
	Now   func() time.Time // default time.Now
	// Interval between checks, default DefaultQBRInterval.
	Interval time.Duration
	// CatchUp is how long after its due instant a review is still made,
	// default DefaultQBRCatchUp.
	CatchUp time.Duration
	// Lease is how long a claim is held while the review is made (far longer
	// than making it takes), default DefaultQBRLease; Keep how long once it
	// is done, default DefaultQBRKeep (at least CatchUp and a day).
	Lease, Keep time.Duration
	// Kick, when set, is called after a review was queued (the outbox
	// sender's Kick).
	Kick func()
	// OnOutcome, when set, is called for every review this scheduler
	// claimed.
	OnOutcome func(QBROutcome)

	once sync.Once
}

func (s *QBRScheduler) init() {
	s.once.Do(func() {
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Interval <= 0 {
			s.Interval = DefaultQBRInterval
		}
		if s.CatchUp <= 0 {
			s.CatchUp = DefaultQBRCatchUp
		}
		if s.Lease <= 0 {
			s.Lease = DefaultQBRLease
		}
		if s.Keep <= 0 {
			s.Keep = DefaultQBRKeep
		}
		s.Keep = max(s.Keep, s.CatchUp+24*time.Hour)
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
	})
}

func (s *QBRScheduler) check() error {
	var missing []string
	if s.Cfg == nil {
		missing = append(missing, "Cfg")
	}
	if s.Store == nil {
		missing = append(missing, "Store")
	}
	if len(missing) > 0 {
		return fmt.Errorf("qbr scheduler: %s not set", strings.Join(missing, ", "))
	}
	return nil
}

// Run checks every Interval for reviews that are due until ctx is
// cancelled, then returns nil. It returns at once (nil) when the
// configuration schedules no reviews; only a scheduler that is not set up
// returns an error. Redis errors are logged and retried the next round.
func (s *QBRScheduler) Run(ctx context.Context) error {
	s.init()
	if err := s.check(); err != nil {
		return err
	}
	sched := s.Cfg.Reports.QBR
	if !sched.Quarterly() {
		return nil
	}
	s.Log.Info("quarterly reviews scheduled", "send", sched.Send, "dir", sched.Dir, "check_every", s.Interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("quarterly reviews: round failed", "err", err)
		}
		timer.Reset(s.Interval)
	}
}

// RunOnce makes every review due at Now that no instance has claimed, and
// returns how many this call made. The error joins the reviews that failed
// (their claims released) and the claims that could not be read.
func (s *QBRScheduler) RunOnce(ctx context.Context) (made int, err error) {
	s.init()
	if err := s.check(); err != nil {
		return 0, err
	}
	sched := s.Cfg.Reports.QBR
	if !sched.Quarterly() {
		return 0, nil
	}
	var errs []error
	for _, c := range s.Cfg.Contracts {
		if ctx.Err() != nil {
			break
		}
		if c.Calendar == nil {
			continue
		}
		now := s.Now()
		q := report.QuarterOf(sla.DateOf(now.In(c.Calendar.Loc))).Prev()
		due, ok := QBRDue(c.Calendar, q, sched.At)
		if !ok || now.Before(due) || !now.Before(due.Add(s.CatchUp)) {
			continue
		}
		key := QBRKey(c.ID, q.String())
		claimed, err := s.Store.ClaimOnce(ctx, key, s.Lease)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !claimed {
			continue // made already, or being made by another instance
		}
		out := s.make(ctx, c, q, due, sched)
		log := s.Log.With("contract", c.ID, "quarter", out.Quarter)
		if out.Err != nil {
			log.Error("quarterly review failed: it will be tried again", "err", out.Err)
			errs = append(errs, fmt.Errorf("review of %s %s: %w", c.ID, out.Quarter, out.Err))
			// A fresh context: the claim must go even when ctx just ended.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.Store.ReleaseClaim(rctx, key); err != nil {
				log.Warn("release claim: the review waits for the claim to expire", "err", err, "lease", s.Lease)
			}
			cancel()
		} else {
			made++
			if err := s.Store.ExtendClaim(ctx, key, s.Keep); err != nil {
				log.Warn("keep claim: another instance may make the review again (its mail is not queued twice)", "err", err)
			}
			switch out.Action {
			case QBRNoRecipients:
				log.Warn("quarterly review made but not mailed: the contract has no representative or customer_contacts", "files", out.Files)
			default:
				log.Info("quarterly review made", "action", out.Action, "due", out.Due, "files", out.Files)
			}
		}
		if s.OnOutcome != nil {
			s.OnOutcome(out)
		}
	}
	return made, errors.Join(errs...)
}

// make builds, renders, writes and queues one review.
func (s *QBRScheduler) make(ctx context.Context, c *rules.Contract, q report.Quarter, due time.Time, sched rules.QBRSchedule) QBROutcome {
	out := QBROutcome{Contract: c.ID, Quarter: q.String(), Due: due, Key: QBRKey(c.ID, q.String()), Action: QBRFailed}
	fail := func(err error) QBROutcome { out.Err = err; return out }
	_, _, mailable := QBRRecipients(c)
	if !mailable && sched.Dir == "" {
		out.Action = QBRNoRecipients // nowhere to put it: not even built
		return out
	}
	tickets, err := report.Load(ctx, s.Store, c.ID)
	if err != nil {
		return fail(err)
	}
	r, err := report.Build(report.Input{Contract: c, Quarter: q, Tickets: tickets, AsOf: due})
	if err != nil {
		return fail(err)
	}
	files, err := RenderQBR(r, "")
	if err != nil {
		return fail(err)
	}
	if sched.Dir != "" {
		paths, err := WriteQBRFiles(sched.Dir, files)
		if err != nil {
			return fail(err)
		}
		out.Files = paths
		out.Action = QBRWritten
	}
	if !sched.Send {
		return out
	}
	if !mailable {
		out.Action = QBRNoRecipients
		return out
	}
	_, added, err := EnqueueQBR(ctx, s.Store, s.Cfg, c, files, s.Now())
	if err != nil {
		return fail(err)
	}
	out.Action = QBRAlreadySent
	if added {
		out.Action = QBRQueued
		if s.Kick != nil {
			s.Kick()
		}
	}
	return out
}

// QBRDue is when the review of quarter q is due: on the first business day
// of the quarter after it in calendar cal, at `at` minutes after midnight in
// the calendar's zone, or, with at < 0, at that day's first opening. ok is
// false when the next quarter has no business day at all.
func QBRDue(cal *sla.Calendar, q report.Quarter, at int) (time.Time, bool) {
	next := report.QuarterOf(q.EndDay())
	for d := next.FirstDay(); d.Before(next.EndDay()); d = d.AddDays(1) {
		if !cal.IsBusinessDay(d) {
			continue
		}
		if at < 0 {
			return cal.FirstOpening(d)
		}
		// A wall-clock time that does not exist that day (a DST gap) is
		// normalised forward by time.Date.
		return time.Date(d.Year, d.Month, d.Day, at/60, at%60, 0, 0, cal.Loc), true
	}
	return time.Time{}, false
}

// WriteQBRFiles writes a review's HTML and CSV into dir (created if needed)
// as <BaseName>.html and .csv, each replaced atomically, and returns their
// paths.
func WriteQBRFiles(dir string, f QBRFiles) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create report directory: %w", err)
	}
	var paths []string
	for _, p := range []struct {
		ext  string
		data []byte
	}{{".html", f.HTML}, {".csv", f.CSV}} {
		path := filepath.Join(dir, f.BaseName()+p.ext)
		if err := writeFileAtomic(path, p.data); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so that a reader never sees half a report.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

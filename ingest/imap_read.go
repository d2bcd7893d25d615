package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Reading a folder without changing it (SPEC §5: the processed folder is the
// system of record, and state must be rebuildable from it).
//
// A Folder is opened with EXAMINE, so nothing of the mailbox changes: no
// message is moved, flagged or expunged, and bodies are fetched with
// BODY.PEEK[] (no \Seen). Its messages are listed once (UID SEARCH ALL, then
// UID, FLAGS, INTERNALDATE and RFC822.SIZE in batches) and handed out in
// INTERNALDATE order, then UID: the order in which the mail server received
// them, which is the order the gateway handled them in. Every wait for the
// server has IMAPConfig.CommandTimeout, as in the Source; a connection that
// breaks while reading is re-established (with the same UIDVALIDITY) and the
// message fetched again.

// FolderMessage is one message of a Folder.
type FolderMessage struct {
	UID          uint32
	InternalDate time.Time
	Size         int64
}

// Folder is an IMAP folder opened read-only. It is used by one goroutine
// at a time.
type Folder struct {
	src         *Source
	name        string
	ss          *imapSession
	uidValidity uint32
	msgs        []FolderMessage
	deleted     int
}

// imapReadAttempts bounds the connections tried for one message.
const imapReadAttempts = 3

// errUIDValidityChanged ends a read whose folder was recreated meanwhile.
var errUIDValidityChanged = errors.New("UIDVALIDITY changed while reading")

// OpenFolder connects with cfg (the mailbox's configuration, as for
// NewSource; its Folder and ProcessedFolder are not used), opens folder
// read-only and lists its messages. Messages flagged \Deleted are left out
// (see Deleted). Close it when done.
func OpenFolder(ctx context.Context, cfg IMAPConfig, folder string, log *slog.Logger, opts ...SourceOption) (*Folder, error) {
	if folder == "" {
		return nil, errors.New("open folder: empty folder name")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open folder %s: %w", folder, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Folder{src: NewSource(cfg, nil, log.With(slog.String("folder", folder)), opts...), name: folder}
	if err := f.connect(ctx); err != nil {
		return nil, err
	}
	if err := f.list(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// connect (re)opens the session and EXAMINEs the folder. A reconnect must
// find the same UIDVALIDITY: otherwise the listed UIDs name other messages.
func (f *Folder) connect(ctx context.Context) error {
	ss, err := f.src.connect(ctx)
	if err != nil {
		return fmt.Errorf("open folder %s: %w", f.name, err)
	}
	var data *imap.SelectData
	err = ss.guard("examine "+f.name, func() error {
		d, err := ss.c.Select(f.name, &imap.SelectOptions{ReadOnly: true}).Wait()
		data = d
		return err
	})
	if err != nil {
		ss.close()
		return fmt.Errorf("open folder %s: %w", f.name, err)
	}
	if f.uidValidity != 0 && data.UIDValidity != f.uidValidity {
		ss.close()
		return fmt.Errorf("open folder %s: %w (was %d, now %d)", f.name, errUIDValidityChanged, f.uidValidity, data.UIDValidity)
	}
	f.ss, f.uidValidity = ss, data.UIDValidity
	return nil
}

// list reads the folder's UIDs and metadata and sorts them.
func (f *Folder) list() error {
	ss := f.ss
	var uids []imap.UID
	err := ss.guard("search", func() error {
		data, err := ss.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait() // ALL
		if err != nil {
			return err
		}
		set, _ := data.All.(imap.UIDSet)
		nums, ok := set.Nums()
		if !ok {
			return fmt.Errorf("server answered with a dynamic UID set %q", set)
		}
		uids = nums
		return nil
	})
	if err != nil {
		return fmt.Errorf("list folder %s: %w", f.name, err)
	}
	slices.Sort(uids)
	for batch := range slices.Chunk(uids, imapMetaBatch) {
		metas, err := ss.fetchMeta(batch)
		if err != nil {
			return fmt.Errorf("list folder %s: %w", f.name, err)
		}
		for _, u := range batch {
			m, ok := metas[u]
			switch {
			case !ok:
				continue // expunged meanwhile
			case m.deleted:
				f.deleted++
				continue
			}
			f.msgs = append(f.msgs, FolderMessage{UID: uint32(m.uid), InternalDate: m.internalDate, Size: m.size})
		}
	}
	slices.SortStableFunc(f.msgs, func(a, b FolderMessage) int {
		return cmp.Or(a.InternalDate.Compare(b.InternalDate), cmp.Compare(a.UID, b.UID))
	})
	return nil
}

// Name is the folder's name.
func (f *Folder) Name() string { return f.name }

// UIDValidity is the folder's UIDVALIDITY.
func (f *Folder) UIDValidity() uint32 { return f.uidValidity }

// Messages lists the folder's messages in INTERNALDATE order, then UID.
// The slice must not be modified.
func (f *Folder) Messages() []FolderMessage { return f.msgs }

// Deleted is the number of messages left out because they are flagged
// \Deleted.
func (f *Folder) Deleted() int { return f.deleted }

// handlerError marks an error of the caller's function, which is returned
// as it is rather than retried.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// Fetch streams message m to fn as a Fetched whose Mailbox is the
// configuration's Name and whose Folder is this folder. fn's error is
// returned as it is. When the connection breaks, Fetch reconnects and calls
// fn again with the message from the start (at most three connections), so
// fn must be idempotent; a message expunged meanwhile is an error.
func (f *Folder) Fetch(ctx context.Context, m FolderMessage, fn func(*Fetched) error) error {
	var last error
	for attempt := 1; attempt <= imapReadAttempts; attempt++ {
		if f.ss == nil {
			if err := ctx.Err(); err != nil {
				return err
			}
			delay := f.src.reconnectDelay(attempt)
			f.src.log.Warn("imap connection lost while reading; reconnecting",
				slog.Uint64("uid", uint64(m.UID)), slog.Any("err", last), slog.Duration("retry_in", delay))
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			if err := f.connect(ctx); err != nil {
				if errors.Is(err, errUIDValidityChanged) {
					return err
				}
				last = err
				continue
			}
		}
		err := f.fetchOnce(ctx, m, fn)
		var he *handlerError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &he):
			return he.err
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if _, failed := imapCommandFailed(err); failed {
			return fmt.Errorf("fetch uid %d of %s: %w", m.UID, f.name, err)
		}
		last = err
		f.ss.close()
		f.ss = nil
	}
	return fmt.Errorf("fetch uid %d of %s: %w", m.UID, f.name, last)
}

// fetchOnce streams m's body to fn over the current connection. A
// *handlerError is fn's; any other error means the connection may be
// unusable.
func (f *Folder) fetchOnce(ctx context.Context, m FolderMessage, fn func(*Fetched) error) error {
	ss := f.ss
	var (
		cmd *imapclient.FetchCommand
		msg *imapclient.FetchMessageData
		lit imap.LiteralReader
	)
	err := ss.guard("fetch body", func() error {
		cmd = ss.c.Fetch(imap.UIDSetNum(imap.UID(m.UID)), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		msg = cmd.Next()
		if msg == nil {
			return nil
		}
		for {
			item := msg.Next()
			if item == nil {
				return nil
			}
			// The literal must be consumed before the next Next() (#667).
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
				lit = b.Literal
				return nil
			}
		}
	})
	if err != nil {
		return err
	}
	if lit == nil {
		cerr := ss.guard("fetch body", func() error {
			if msg != nil {
				for msg.Next() != nil {
				}
			}
			return cmd.Close()
		})
		if cerr != nil {
			return cerr
		}
		// Gone from the folder (expunged meanwhile), or a NIL body.
		return &handlerError{fmt.Errorf("fetch uid %d of %s: the server returned no body", m.UID, f.name)}
	}
	body := &imapBody{r: lit, size: lit.Size()}
	size := m.Size
	if size == 0 {
		size = lit.Size()
	}
	fetched := &Fetched{
		Mailbox:      f.src.cfg.Name,
		Folder:       f.name,
		UIDValidity:  f.uidValidity,
		UID:          m.UID,
		InternalDate: m.InternalDate,
		Size:         size,
		Body:         body,
	}
	herr := fn(fetched)
	// Drain what fn left unread before the command goes on (#667).
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("drain message body: %w", err)
	}
	if body.err != nil {
		// fn saw a broken body: whatever it did, it did with part of the
		// message. The message is read again over a new connection.
		return body.err
	}
	cerr := ss.guard("finish fetch", func() error {
		for msg.Next() != nil {
		}
		return cmd.Close()
	})
	if herr != nil {
		return &handlerError{herr}
	}
	if _, failed := imapCommandFailed(cerr); failed {
		cerr = nil // the body arrived in full; only the tagged answer was NO
	}
	return cerr
}

// Close logs out and closes the connection.
func (f *Folder) Close() {
	if f.ss != nil {
		f.ss.close()
		f.ss = nil
	}
}

// ReadFolder opens folder read-only with cfg and calls fn for each of its
// messages in INTERNALDATE order, then UID (see Folder). It stops at the
// first error of fn, which it returns wrapped with the message's UID.
// Nothing in the mailbox changes.
func ReadFolder(ctx context.Context, cfg IMAPConfig, folder string, fn func(*Fetched) error, opts ...SourceOption) error {
	f, err := OpenFolder(ctx, cfg, folder, nil, opts...)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, m := range f.Messages() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.Fetch(ctx, m, fn); err != nil {
			return fmt.Errorf("read uid %d of %s: %w", m.UID, folder, err)
		}
	}
	return nil
}

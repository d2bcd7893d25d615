package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// ErrMessageNotFound is returned by FindByMessageID when no message of the
// folder has the Message-ID (not moved there yet, or gone).
var ErrMessageNotFound = errors.New("no message with that Message-ID")

// FindByMessageID connects with cfg (as OpenFolder does), opens folder
// read-only, looks up the message whose Message-ID is messageID (without
// angle brackets) with UID SEARCH HEADER, and streams it to fn as Folder.Fetch
// does (fn may be called again after a broken connection, so it must be
// idempotent; its error is returned as it is). Messages flagged \Deleted are
// not considered; of several with the same Message-ID the lowest UID is
// used. Every wait for the server has cfg.CommandTimeout. Nothing in the
// mailbox changes. It fails with an error wrapping ErrMessageNotFound when
// no message matches.
func FindByMessageID(ctx context.Context, cfg IMAPConfig, folder, messageID string, fn func(*Fetched) error, opts ...SourceOption) error {
	id := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(messageID), "<"), ">"))
	if id == "" || strings.ContainsAny(id, "\r\n") {
		return fmt.Errorf("find message in %s: invalid Message-ID %q", folder, messageID)
	}
	if folder == "" {
		return errors.New("find message: empty folder name")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("find message in %s: %w", folder, err)
	}
	f := &Folder{src: NewSource(cfg, nil, slog.New(slog.DiscardHandler), opts...), name: folder}
	if err := f.connect(ctx); err != nil {
		return err
	}
	defer f.Close()
	uid, err := f.searchMessageID(id)
	if err != nil {
		return err
	}
	if err := f.Fetch(ctx, FolderMessage{UID: uid}, fn); err != nil {
		return fmt.Errorf("find message <%s> in %s: %w", id, folder, err)
	}
	return nil
}

// searchMessageID returns the lowest UID of a live message whose Message-ID
// field contains <id>.
func (f *Folder) searchMessageID(id string) (uint32, error) {
	ss := f.ss
	var uids []imap.UID
	err := ss.guard("search message-id", func() error {
		data, err := ss.c.UIDSearch(&imap.SearchCriteria{
			Header:  []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + id + ">"}},
			NotFlag: []imap.Flag{imap.FlagDeleted},
		}, nil).Wait()
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
		return 0, fmt.Errorf("find message <%s> in %s: %w", id, f.name, err)
	}
	if len(uids) == 0 {
		return 0, fmt.Errorf("find message <%s> in %s: %w", id, f.name, ErrMessageNotFound)
	}
	return uint32(slices.Min(uids)), nil
}

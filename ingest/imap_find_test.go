package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestFindByMessageID: the message is found by its Message-ID among others
// (one whose id contains the wanted one, one \Deleted copy), read with
// EXAMINE and BODY.PEEK[] so nothing changes, and a missing one is
// ErrMessageNotFound.
func TestFindByMessageID(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	if err := ts.user.Create(imapTestProcessed, nil); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, m := range []struct {
		id  string
		del bool
	}{{"xwanted", false}, {"wanted", true}, {"other", false}, {"wanted", false}} {
		opt := &imap.AppendOptions{Time: at}
		if m.del {
			opt.Flags = []imap.Flag{imap.FlagDeleted}
		}
		if _, err := ts.user.Append(imapTestProcessed, bytes.NewReader(imapTestMessage(m.id, 3000, "")), opt); err != nil {
			t.Fatal(err)
		}
	}
	before := ts.snapshot(imapTestProcessed)
	var cmds imapCommandLog
	cfg := imapTestConfig(ts)
	dial := WithDialer(cmds.dialer((&net.Dialer{}).DialContext))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, tt := range []struct {
		name, id string
		wantUID  uint32
		wantErr  error
	}{
		{"found", "wanted@acme.co.il", 4, nil},
		{"angle brackets", "<wanted@acme.co.il>", 4, nil},
		{"missing", "gone@acme.co.il", 0, ErrMessageNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got *Fetched
			var body []byte
			err := FindByMessageID(ctx, cfg, imapTestProcessed, tt.id, func(f *Fetched) error {
				got = f
				var rerr error
				body, rerr = io.ReadAll(f.Body)
				return rerr
			}, dial)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Fatalf("err %v, called %v; want %v", err, got != nil, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.UID != tt.wantUID || !bytes.Equal(body, imapTestMessage("wanted", 3000, "")) {
				t.Errorf("got uid %d (%d bytes), want uid %d with the stored bytes", got.UID, len(body), tt.wantUID)
			}
		})
	}
	if err := FindByMessageID(ctx, cfg, imapTestProcessed, "bad\r\nid", func(*Fetched) error { return nil }, dial); err == nil {
		t.Error("a Message-ID with a line break was searched for")
	}
	after := ts.snapshot(imapTestProcessed)
	if len(after) != len(before) {
		t.Fatalf("folder changed: %d messages, was %d", len(after), len(before))
	}
	for i := range after {
		if !equalFlags(flagStrings(after[i].flags), flagStrings(before[i].flags)) {
			t.Errorf("uid %d flags %v, were %v", after[i].uid, after[i].flags, before[i].flags)
		}
	}
	log := cmds.String()
	for _, bad := range []string{"SELECT", "STORE", "EXPUNGE", "MOVE", "BODY[]"} {
		if strings.Contains(log, " "+bad) {
			t.Errorf("client sent %s:\n%s", bad, log)
		}
	}
}

func equalFlags(a, b []string) bool { return strings.Join(a, " ") == strings.Join(b, " ") }

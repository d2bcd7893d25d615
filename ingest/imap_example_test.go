package ingest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/northwind-it/ticketgw/ingest"
)

// memCheckpoints stands in for the Redis store in this example.
type memCheckpoints struct{ uv, last uint32 }

func (c *memCheckpoints) Checkpoint(context.Context, string) (uint32, uint32, error) {
	return c.uv, c.last, nil
}

func (c *memCheckpoints) SetCheckpoint(_ context.Context, _ string, uv, last uint32) error {
	c.uv, c.last = uv, last
	return nil
}

// The source hands each message of the folder to the handler and moves it
// to the processed folder once the handler has stored it.
func ExampleNewSource() {
	cfg := ingest.IMAPConfig{
		Addr:            "imap.northwind-it.example:993",
		TLS:             "implicit",
		Username:        "support@northwind-it.example",
		Password:        os.Getenv("IMAP_PASSWORD"),
		Folder:          "INBOX",
		ProcessedFolder: "Processed",
		IDLE:            true,
		PollInterval:    30 * time.Second,
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	src := ingest.NewSource(cfg, &memCheckpoints{}, log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := src.Run(ctx, func(ctx context.Context, m *ingest.Fetched) error {
		raw, err := io.ReadAll(m.Body) // valid only during this call
		if err != nil {
			return err // the message stays in the folder and is retried
		}
		// Store the ticket keyed by (m.Mailbox, m.UIDValidity, m.UID) and
		// Message-ID, so that a second delivery of the same message is a no-op.
		fmt.Printf("uid %d: %d bytes received %s\n", m.UID, len(raw), m.InternalDate)
		return nil
	})
	if err != nil {
		log.Error("imap source", "err", err)
	}
	fmt.Println(src.Stats().Handled)
}

package lmtp_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/lmtp"
)

// A Postfix in front of the gateway delivers the support domain with
//
//	virtual_transport = lmtp:inet:127.0.0.1:2424
//
// and the gateway takes each message, stores its ticket, and only then
// answers 250; the copy is filed into the mailbox's processed folder.
func Example() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	filing, err := lmtp.NewIMAPAppender(ingest.IMAPConfig{
		Addr: "imap.northwind-it.example:993", Username: "support@northwind-it.example",
		Password: os.Getenv("IMAP_PASSWORD"), ProcessedFolder: "Processed",
	}, log)
	if err != nil {
		fmt.Println(err)
		return
	}
	handle := func(ctx context.Context, f *ingest.Fetched) error {
		// service.Pipeline.Handle in the gateway: nil only once the ticket
		// is stored.
		return nil
	}
	srv, err := lmtp.New(lmtp.Config{
		Network: "tcp", Address: "127.0.0.1:2424",
		Mailbox:    "support@northwind-it.example",
		Recipients: []string{"support@northwind-it.example"},
	}, handle, filing, log)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := srv.Run(ctx); err != nil { // returns once ctx is done and deliveries finished
		fmt.Println(err)
	}
}

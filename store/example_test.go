package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/store"
)

// A new mail becomes a ticket, its acknowledgement goes into the outbox, and
// the message is marked processed only afterwards.
func Example() {
	ctx := context.Background()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	s := store.New(rdb, "tg:")
	at := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC) // INTERNALDATE

	t, created, err := s.CreateTicket(ctx, store.NewTicket{
		Ticket:   domain.Ticket{Contract: "acme", Category: domain.Fault, Priority: domain.High, Status: domain.StatusOpen, Opened: at},
		Prefix:   "ACME",
		DedupKey: "mid:CAF=abc@mail.acme.co.il",
		Event:    domain.Event{Kind: domain.EventOpened, At: at},
		Timers:   []store.Timer{{Kind: store.ResponseBreach, Due: at.Add(time.Hour)}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if created {
		_, err = s.Enqueue(ctx, store.OutboxEntry{Key: "ack:" + t.ID, Kind: "ack", Ticket: t.ID,
			From: "support@northwind-it.example", To: []string{"yossi@acme.co.il"}, Raw: []byte("...")}, time.Now())
	}
	if err == nil {
		err = s.MarkProcessed(ctx, store.SourceRef{Mailbox: "INBOX", UIDValidity: 1, UID: 42}, t.ID)
	}
	fmt.Println(t.ID, err)
}

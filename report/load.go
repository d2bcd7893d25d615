package report

import (
	"context"
	"fmt"
	"sync"

	"github.com/northwind-it/ticketgw/domain"
)

// Source is what Load reads; *store.Store implements it.
type Source interface {
	TicketsByContract(ctx context.Context, contract string) ([]domain.Ticket, error)
	Events(ctx context.Context, id string) ([]domain.Event, error)
}

// loadWorkers bounds the parallel event reads of Load.
const loadWorkers = 8

// Load reads every ticket of a contract with its events, ordered by ticket
// number. Events are read with a few requests in flight; the first error
// stops it.
func Load(ctx context.Context, st Source, contract string) ([]TicketWithEvents, error) {
	ts, err := st.TicketsByContract(ctx, contract)
	if err != nil {
		return nil, fmt.Errorf("load report data: %w", err)
	}
	out := make([]TicketWithEvents, len(ts))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(loadWorkers, len(ts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				evs, err := st.Events(ctx, ts[i].ID)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("load report data: %w", err)
						cancel()
					}
					mu.Unlock()
					continue
				}
				out[i] = TicketWithEvents{Ticket: ts[i], Events: evs}
			}
		}()
	}
feed:
	for i := range ts {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load report data: %w", err)
	}
	return out, nil
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// TimerCount returns how many SLA timers of a contract ("" for tickets of
// unknown senders) are pending: scheduled or claimed and not yet
// acknowledged. It costs two ZCARDs, cheap enough for every metrics scrape.
func (s *Store) TimerCount(ctx context.Context, contract string) (int64, error) {
	var sched, leased *redis.IntCmd
	// Two reads of one slot; no script in this pipeline.
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sched = p.ZCard(ctx, s.k.timers(contract))
		leased = p.ZCard(ctx, s.k.timerLeases(contract))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count timers of contract %q: %w", contract, err)
	}
	return sched.Val() + leased.Val(), nil
}

// arrivalKey is the context key of WithArrival.
type arrivalKey struct{}

// WithArrival returns a context under which Enqueue stamps entries that
// carry no Arrived time with t: the instant the message being handled
// reached the gateway. The ingest side sets it once per message, so that
// every mail the message causes, however deep in the pipeline it is
// queued, carries its arrival for the arrival-to-send metrics.
func WithArrival(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, arrivalKey{}, t)
}

// ArrivalFrom returns the instant set by WithArrival (zero when none).
func ArrivalFrom(ctx context.Context) time.Time {
	t, _ := ctx.Value(arrivalKey{}).(time.Time)
	return t
}

package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// testRedis returns a client for the test Redis (REDIS_ADDR, default
// 127.0.0.1:6379) and a key prefix of its own, whose keys are removed when
// the test ends. Without Redis the test is skipped, unless CI=true.
func testRedis(t *testing.T) (*redis.Client, string, string) {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", addr, err)
		}
		t.Skipf("redis at %s not reachable: %v", addr, err)
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	prefix := "apptest-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up %s*: %v", prefix, err)
		}
	})
	return rdb, prefix, "redis://" + addr + "/0"
}

// seedIMACs stores n acme IMAC tickets on day, the way `gateway run` does,
// so that the counters `classify --redis` reads are real ones.
func seedIMACs(t *testing.T, st *store.Store, day string, n int) {
	t.Helper()
	d, err := sla.ParseDate(day)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		opened := time.Date(2026, 11, 20, 10, 0, i, 0, time.UTC)
		_, created, err := st.CreateTicket(context.Background(), store.NewTicket{
			Ticket: domain.Ticket{Contract: "acme", Category: domain.IMAC, Priority: domain.Normal,
				Status: domain.StatusOpen, Subject: "seed", Opened: opened},
			Prefix:   "ACME",
			DedupKey: fmt.Sprintf("mid:seed-%s-%d@test", day, i),
			Event:    domain.Event{Kind: domain.EventOpened, At: opened},
			IMAC:     &store.IMACRequest{Candidates: []sla.Date{d}, MonthlyQuota: 10, PerVisit: 5, Policy: store.PolicyForce},
		})
		if err != nil || !created {
			t.Fatalf("seed imac %d on %s: created %v, %v", i, day, created, err)
		}
	}
}

// TestClassifyRedisCounters: with --redis, classify reads the live IMAC
// counters (SPEC §4) and the IMAC of Sunday 29 November 09:00 (notice ends
// Tuesday 1 December 09:00, first possible Tuesday 8 December) is placed by
// the acme plan (10 a month, 5 a visit, next_month when full). Without
// --redis the same store is not read.
func TestClassifyRedisCounters(t *testing.T) {
	tests := []struct {
		name     string
		seed     map[string]int // day → IMACs already scheduled
		redis    bool
		date     string
		used     string
		ackHas   string
		deferred bool
	}{
		{
			// SPEC §7: three IMACs in December already, this is the 4th.
			name: "SPEC §7: IMAC 4 of 10", seed: map[string]int{"2026-12-01": 2, "2026-12-15": 1}, redis: true,
			date: "2026-12-08", used: "4", ackHas: "זוהי בקשת IMAC מספר 4 מתוך 10",
		},
		{
			// Tuesday 8 December already has 5 (per_visit): the next
			// Tuesday, 15 December, the 6th IMAC of December.
			name: "visit full", seed: map[string]int{"2026-12-08": 5}, redis: true,
			date: "2026-12-15", used: "6",
		},
		{
			// December's 10 are used: next_month moves it to the first
			// Tuesday of January 2027, the 1st of that month.
			name: "month full", seed: map[string]int{"2026-12-01": 5, "2026-12-22": 5}, redis: true,
			date: "2027-01-05", used: "1", deferred: true,
		},
		{
			name: "without --redis the quota counts as untouched", seed: map[string]int{"2026-12-08": 5}, redis: false,
			date: "2026-12-08", used: "1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb, prefix, url := testRedis(t)
			st := store.New(rdb, prefix)
			for day, n := range tt.seed {
				seedIMACs(t, st, day, n)
			}
			env := map[string]string{"REDIS_URL": url, "REDIS_PREFIX": prefix}
			args := []string{"classify", "-c", exampleConfig, "--json", "--show-ack", "--at", "2026-11-29T09:00", imacSunday}
			if tt.redis {
				args = append(args, "--redis")
			}
			r := runMain(t, env, args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
			}
			l := parseJSONLines(t, r.stdout)[0]
			if l["imac_date"] != tt.date || l["imac_quota_used"] != tt.used || l["imac_quota"] != "10" {
				t.Errorf("imac %s, %s of %s; want %s, %s of 10", l["imac_date"], l["imac_quota_used"], l["imac_quota"], tt.date, tt.used)
			}
			if !strings.Contains(l["ack_text"], tt.ackHas) {
				t.Errorf("the acknowledgement does not say %q:\n%s", tt.ackHas, l["ack_text"])
			}
			// Deferred: the acknowledgement says the quota was used up.
			if tt.deferred && (!strings.Contains(l["ack_text"], "כבר נוצלה") || !strings.Contains(l["ack_text"], "יום שלישי, 5 בינואר 2027")) {
				t.Errorf("the acknowledgement does not say the quota is used up and name Tuesday 5 January 2027:\n%s", l["ack_text"])
			}
			// Read, never write: the counters are as seeded.
			counts, err := st.IMACUsage(context.Background(), "acme")
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, n := range tt.seed {
				total += n
			}
			if got := counts.MonthUsed(2026, time.December) + counts.MonthUsed(2027, time.January); got != total {
				t.Errorf("after classify --redis: %d IMACs counted, want the %d seeded", got, total)
			}
		})
	}
}

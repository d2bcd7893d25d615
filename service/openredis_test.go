package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/store"
)

// openRedisURL runs OpenRedis on a configuration with this redis: section.
func openRedisURL(t *testing.T, url, password string) (redis.UniversalClient, error) {
	t.Helper()
	cfg := &rules.Config{Redis: rules.Redis{URL: url, Prefix: "tg:"}}
	if password != "" {
		cfg.Redis.Password = rules.NewSecret(password)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return OpenRedis(ctx, cfg)
}

// storeWorks stores and reads back a ticket through rdb.
func storeWorks(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	st := store.New(rdb, "tg:")
	at := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	tk, created, err := st.CreateTicket(ctx, store.NewTicket{
		Ticket: domain.Ticket{Contract: "acme", Category: domain.Fault, Priority: domain.High, Status: domain.StatusOpen, Opened: at},
		Prefix: "ACME", DedupKey: "mid:open-redis@test", Event: domain.Event{Kind: domain.EventOpened, At: at},
		Timers: []store.Timer{{Kind: store.ResponseBreach, Due: at.Add(time.Hour)}},
	})
	if err != nil || !created {
		t.Fatalf("create ticket: %v %v", created, err)
	}
	if got, err := st.Ticket(ctx, tk.ID); err != nil || got.ID != tk.ID {
		t.Fatalf("read ticket: %+v %v", got, err)
	}
}

// TestOpenRedisSentinel: a redis+sentinel URL reaches the master the
// sentinel names, with the URL's password for the master and, with
// sentinel_auth=true, for a sentinel that requires one.
func TestOpenRedisSentinel(t *testing.T) {
	master := startTestRedis(t, "--requirepass", "data-pw", "--appendonly", "no", "--save", "")
	host, port, _ := strings.Cut(master, ":")
	sentinel := func(requirepass string) string {
		conf := filepath.Join(t.TempDir(), "sentinel.conf")
		body := fmt.Sprintf("sentinel monitor mymaster %s %s 1\nsentinel auth-pass mymaster data-pw\n", host, port)
		if requirepass != "" {
			body += "requirepass " + requirepass + "\n"
		}
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return startTestRedisConf(t, conf, "--sentinel")
	}

	open := sentinel("")
	rdb, err := openRedisURL(t, "redis+sentinel://:data-pw@"+open+"/mymaster/0", "")
	if err != nil {
		t.Fatalf("open via sentinel: %v", err)
	}
	defer rdb.Close()
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil || !strings.Contains(info, "tcp_port:"+port) {
		t.Errorf("not connected to the master on port %s: %v", port, err)
	}
	storeWorks(t, rdb)

	// redis.password wins over the URL's (here: the URL has none).
	rdb2, err := openRedisURL(t, "sentinel://"+open+"/mymaster", "data-pw")
	if err != nil {
		t.Fatalf("open via sentinel with redis.password: %v", err)
	}
	rdb2.Close()
	if _, err := openRedisURL(t, "sentinel://"+open+"/mymaster", "wrong"); err == nil {
		t.Error("wrong password: no error")
	}
	if _, err := openRedisURL(t, "sentinel://"+open+"/othermaster", "data-pw"); err == nil {
		t.Error("unknown master name: no error")
	}

	locked := sentinel("data-pw")
	if _, err := openRedisURL(t, "redis+sentinel://:data-pw@"+locked+"/mymaster", ""); err == nil {
		t.Error("sentinel requiring a password, without sentinel_auth: no error")
	}
	rdb3, err := openRedisURL(t, "redis+sentinel://:data-pw@"+locked+"/mymaster?sentinel_auth=true", "")
	if err != nil {
		t.Fatalf("open via a sentinel with sentinel_auth: %v", err)
	}
	rdb3.Close()
}

// TestOpenRedisClusterSeed: redis+cluster with a single seed gives a
// Cluster client (a plain client would fail with MOVED on keys of other
// nodes' slots and with CROSSSLOT nowhere).
func TestOpenRedisClusterSeed(t *testing.T) {
	addr := startTestRedis(t, "--appendonly", "no", "--save", "", "--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"))
	ctx := context.Background()
	setup := redis.NewClient(&redis.Options{Addr: addr})
	defer setup.Close()
	if err := setup.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("assign slots: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if info, _ := setup.ClusterInfo(ctx).Result(); strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster not ready")
		}
	}
	rdb, err := openRedisURL(t, "redis+cluster://"+addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("OpenRedis gave a %T, want a cluster client", rdb)
	}
	storeWorks(t, rdb)
}

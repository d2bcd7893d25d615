package service

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// persistenceCheckTimeout bounds CheckPersistence.
const persistenceCheckTimeout = 3 * time.Second

// CheckPersistence looks at whether Redis keeps its data across a restart
// (an append-only file or RDB snapshots) and returns a warning to log when
// it does not, or "" when it does or cannot tell. Tickets, SLA timers and
// the outbox live in Redis (SPEC §5), so a Redis without persistence loses
// them on restart. On a Cluster every master is asked.
//
// It reads CONFIG GET appendonly and save; where CONFIG is disabled or
// refused (managed services, ACLs) it falls back to INFO persistence:
// aof_enabled, and whether an RDB snapshot was written since the server
// started. Errors are never fatal: a Redis that cannot be asked is not
// reported.
func CheckPersistence(ctx context.Context, rdb redis.UniversalClient) string {
	ctx, cancel := context.WithTimeout(ctx, persistenceCheckTimeout)
	defer cancel()
	var problems []string
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			if p := nodePersistence(ctx, c); p != "" {
				mu.Lock()
				problems = append(problems, c.Options().Addr+": "+p)
				mu.Unlock()
			}
			return nil
		})
		slices.Sort(problems)
	} else if p := nodePersistence(ctx, rdb); p != "" {
		problems = append(problems, p)
	}
	if len(problems) == 0 {
		return ""
	}
	return "redis persistence is off (" + strings.Join(problems, "; ") + "): tickets, SLA timers and queued mail " +
		"are lost when Redis restarts; enable appendonly yes (or RDB snapshots with save), " +
		"or be ready to run gateway rebuild from the processed folder"
}

// nodePersistence describes the missing persistence of one server ("" when
// it has some, or when it cannot be told).
func nodePersistence(ctx context.Context, c redis.Cmdable) string {
	aofCfg, aofErr := c.ConfigGet(ctx, "appendonly").Result()
	saveCfg, saveErr := c.ConfigGet(ctx, "save").Result()
	if aofErr == nil && saveErr == nil {
		aof, okAOF := aofCfg["appendonly"]
		save, okSave := saveCfg["save"]
		if !okAOF || !okSave {
			return "" // CONFIG answered without the parameters: cannot tell
		}
		if strings.EqualFold(aof, "yes") || strings.TrimSpace(save) != "" {
			return ""
		}
		return "appendonly no, save \"\""
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return ""
	}
	fields := infoFields(info)
	aof, ok := fields["aof_enabled"]
	if !ok {
		return ""
	}
	if aof == "1" {
		return ""
	}
	// INFO does not show the snapshot schedule; a snapshot written since
	// the server started shows that one is probably configured.
	if n, err := strconv.Atoi(fields["rdb_saves"]); err == nil && n > 0 {
		return ""
	}
	if v, ok := fields["rdb_last_bgsave_time_sec"]; ok && v != "-1" {
		return ""
	}
	return "CONFIG unavailable; INFO shows aof_enabled:0 and no RDB snapshot since the server started"
}

// infoFields parses the "key:value" lines of an INFO reply.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

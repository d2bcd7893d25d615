package service

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/rules"
)

// redis.url forms (SPEC §5, §9), taken apart by rules.ParseRedisURL:
//
//	redis://[[user]:password@]host[:6379][/db][?options]        one server
//	rediss://...                                                  the same over TLS
//	unix://[[user]:password@]/path/to/redis.sock[?db=N]           one server, local socket
//	redis://host1:7000,host2:7001,...[?options]                   Redis Cluster (seed nodes)
//	redis+cluster://host:7000[,...][?options]                     Redis Cluster, even with one seed
//	rediss+cluster://...                                          Redis Cluster over TLS
//	redis+sentinel://[[user]:password@]s1[:26379],s2/master[/db]  Redis Sentinel (also sentinel://)
//	rediss+sentinel://...                                         Sentinel, TLS to sentinels and servers
//
// The user information is for the Redis servers; sentinels get the same
// credentials only with sentinel_auth=true (sentinel_username overrides the
// user name). Options: dial_timeout, read_timeout, write_timeout,
// pool_timeout, conn_max_idle_time, conn_max_lifetime, min_retry_backoff,
// max_retry_backoff (durations such as 3s or 500ms, a plain number is
// seconds), pool_size, min_idle_conns, max_idle_conns, max_active_conns,
// max_retries, dialer_retries, client_name, protocol (2 or 3), db, and
// skip_verify (TLS only), max_redirects (Cluster only), sentinel_auth and
// sentinel_username (Sentinel only). Replica reads (read_only,
// route_by_latency, route_randomly) are refused: the gateway reads what it
// has just written.

// ParseRedisURL turns redis.url into options for go-redis's universal
// client: redis.NewUniversalClient then picks a Sentinel failover client
// (MasterName set), a Cluster client (several seed addresses, or
// IsClusterMode for a single seed) or a plain client. Unknown options,
// options of another mode and malformed values are errors; no error
// quotes the password.
func ParseRedisURL(s string) (*redis.UniversalOptions, error) {
	opt, _, err := parseRedisURL(s)
	return opt, err
}

// RedisOptions returns the client options of the redis: section: its URL,
// with redis.password (when set) in place of the URL's password, for the
// sentinels too when the URL asks for sentinel_auth.
func RedisOptions(r rules.Redis) (*redis.UniversalOptions, error) {
	opt, sentinelAuth, err := parseRedisURL(r.URL)
	if err != nil {
		return nil, err
	}
	if !r.Password.IsZero() {
		opt.Password = r.Password.Reveal()
	}
	if sentinelAuth {
		opt.SentinelPassword = opt.Password
		if opt.SentinelUsername == "" {
			opt.SentinelUsername = opt.Username
		}
	}
	return opt, nil
}

// RedisAddrDesc describes where opt points, for logs and errors (never a
// password).
func RedisAddrDesc(opt *redis.UniversalOptions) string {
	addrs := strings.Join(opt.Addrs, ",")
	switch {
	case opt.MasterName != "":
		return fmt.Sprintf("sentinel master %q via %s", opt.MasterName, addrs)
	case opt.IsClusterMode || len(opt.Addrs) > 1:
		return "cluster " + addrs
	default:
		return addrs
	}
}

// redisOption is one query option of redis.url.
type redisOption struct {
	modes []rules.RedisMode // nil: every mode
	set   func(o *redis.UniversalOptions, v string) error
}

func durationOpt(field func(*redis.UniversalOptions) *time.Duration) func(*redis.UniversalOptions, string) error {
	return func(o *redis.UniversalOptions, v string) error {
		var d time.Duration
		if n, err := strconv.Atoi(v); err == nil {
			d = time.Duration(n) * time.Second
		} else if d, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 3s, 500ms)", v)
		}
		if d <= 0 {
			return fmt.Errorf("%q: must be positive (every Redis call has a deadline)", v)
		}
		*field(o) = d
		return nil
	}
}

func intOpt(minV, maxV int, field func(*redis.UniversalOptions) *int) func(*redis.UniversalOptions, string) error {
	return func(o *redis.UniversalOptions, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < minV || n > maxV {
			return fmt.Errorf("%q: expected a whole number from %d to %d", v, minV, maxV)
		}
		*field(o) = n
		return nil
	}
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q: expected true or false", v)
}

var (
	onlyCluster  = []rules.RedisMode{rules.RedisCluster}
	onlySentinel = []rules.RedisMode{rules.RedisSentinel}
	notCluster   = []rules.RedisMode{rules.RedisStandalone, rules.RedisSentinel}
)

const maxPool = 1 << 16

var redisOptions = map[string]redisOption{
	"dial_timeout":       {set: durationOpt(func(o *redis.UniversalOptions) *time.Duration { return &o.DialTimeout })},
	"read_timeout":       {set: durationOpt(func(o *redis.UniversalOptions) *time.Duration { return &o.ReadTimeout })},
	"write_timeout":      {set: durationOpt(func(o *redis.UniversalOptions) *time.Duration { return &o.WriteTimeout })},
	"pool_timeout":       {set: durationOpt(func(o *redis.UniversalOptions) *time.Duration { return &o.PoolTimeout })},
	"conn_max_idle_time": {set: durationOpt(func(o *redis.UniversalOptions) *time.Duration { return &o.ConnMaxIdleTime })},
	"conn_max_lifetime":  {set: durationOpt(func(o *redis.UniversalOptions) *time.Duration { return &o.ConnMaxLifetime })},
	"min_retry_backoff":  {set: durationOpt(func(o *redis.UniversalOptions) *time.Duration { return &o.MinRetryBackoff })},
	"max_retry_backoff":  {set: durationOpt(func(o *redis.UniversalOptions) *time.Duration { return &o.MaxRetryBackoff })},
	"pool_size":          {set: intOpt(1, maxPool, func(o *redis.UniversalOptions) *int { return &o.PoolSize })},
	"min_idle_conns":     {set: intOpt(0, maxPool, func(o *redis.UniversalOptions) *int { return &o.MinIdleConns })},
	"max_idle_conns":     {set: intOpt(0, maxPool, func(o *redis.UniversalOptions) *int { return &o.MaxIdleConns })},
	"max_active_conns":   {set: intOpt(0, maxPool, func(o *redis.UniversalOptions) *int { return &o.MaxActiveConns })},
	// -1 turns retries off, as in go-redis.
	"max_retries":    {set: intOpt(-1, 100, func(o *redis.UniversalOptions) *int { return &o.MaxRetries })},
	"dialer_retries": {set: intOpt(0, 100, func(o *redis.UniversalOptions) *int { return &o.DialerRetries })},
	"protocol":       {set: intOpt(2, 3, func(o *redis.UniversalOptions) *int { return &o.Protocol })},
	"client_name": {set: func(o *redis.UniversalOptions, v string) error {
		if v == "" || strings.ContainsAny(v, " \t\r\n") {
			return fmt.Errorf("%q: expected a name without spaces", v)
		}
		o.ClientName = v
		return nil
	}},
	"db":            {modes: notCluster, set: intOpt(0, 1<<20, func(o *redis.UniversalOptions) *int { return &o.DB })},
	"max_redirects": {modes: onlyCluster, set: intOpt(-1, 100, func(o *redis.UniversalOptions) *int { return &o.MaxRedirects })},
	"sentinel_username": {modes: onlySentinel, set: func(o *redis.UniversalOptions, v string) error {
		o.SentinelUsername = v
		return nil
	}},
	// skip_verify and sentinel_auth are handled by parseRedisURL.
	"skip_verify":   {},
	"sentinel_auth": {modes: onlySentinel},
}

// refusedRedisOptions would route reads to replicas, which may lag behind
// what the gateway has just written.
var refusedRedisOptions = []string{"read_only", "route_by_latency", "route_randomly", "replica_only"}

// parseRedisURL is ParseRedisURL; sentinelAuth reports sentinel_auth=true.
func parseRedisURL(s string) (opt *redis.UniversalOptions, sentinelAuth bool, err error) {
	u, err := rules.ParseRedisURL(s)
	if err != nil {
		return nil, false, fmt.Errorf("parse redis.url: %w", err)
	}
	opt = &redis.UniversalOptions{Username: u.Username, Password: u.Password, DB: u.DB}
	switch {
	case u.Socket != "":
		opt.Addrs = []string{u.Socket}
	default:
		opt.Addrs = u.Addrs
	}
	switch u.Mode {
	case rules.RedisCluster:
		opt.IsClusterMode = true // a single seed is a cluster too (LIBNOTES §5)
	case rules.RedisSentinel:
		opt.MasterName = u.Master
	}
	skipVerify := false
	names := make([]string, 0, len(u.Query))
	for name := range u.Query {
		names = append(names, name)
	}
	slices.Sort(names) // the first error is the same every time
	var errs []error
	for _, name := range names {
		vals := u.Query[name]
		if slices.Contains(refusedRedisOptions, name) {
			errs = append(errs, fmt.Errorf("option %s: replica reads are not supported (the gateway reads what it has just written)", name))
			continue
		}
		o, ok := redisOptions[name]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown option %q", name))
			continue
		}
		if o.modes != nil && !slices.Contains(o.modes, u.Mode) {
			errs = append(errs, fmt.Errorf("option %s does not apply to a %s URL", name, u.Mode))
			continue
		}
		if len(vals) != 1 {
			errs = append(errs, fmt.Errorf("option %s given %d times", name, len(vals)))
			continue
		}
		v := vals[0]
		switch name {
		case "skip_verify":
			if !u.TLS {
				errs = append(errs, errors.New("option skip_verify needs a TLS scheme (rediss, rediss+cluster, rediss+sentinel)"))
				continue
			}
			if skipVerify, err = parseBool(v); err != nil {
				errs = append(errs, fmt.Errorf("option %s: %w", name, err))
			}
		case "sentinel_auth":
			if sentinelAuth, err = parseBool(v); err != nil {
				errs = append(errs, fmt.Errorf("option %s: %w", name, err))
			}
		default:
			if err := o.set(opt, v); err != nil {
				errs = append(errs, fmt.Errorf("option %s: %w", name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, false, fmt.Errorf("parse redis.url: %w", err)
	}
	if sentinelAuth {
		opt.SentinelPassword = opt.Password
		if opt.SentinelUsername == "" {
			opt.SentinelUsername = opt.Username
		}
	}
	if u.TLS {
		// ServerName is left empty: go-redis dials with
		// tls.DialWithDialer, which takes it from each node's address.
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
	}
	return opt, sentinelAuth, nil
}

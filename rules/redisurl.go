package rules

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// RedisMode is how the gateway reaches Redis, decided by redis.url.
type RedisMode string

// Redis deployment modes.
const (
	RedisStandalone RedisMode = "standalone" // one server (redis://host, rediss://host, unix:///path)
	RedisCluster    RedisMode = "cluster"    // Redis Cluster: seed nodes
	RedisSentinel   RedisMode = "sentinel"   // Redis Sentinel: sentinels and a master name
)

// Default ports of the hosts of redis.url.
const (
	DefaultRedisPort    = "6379"
	DefaultSentinelPort = "26379"
)

// RedisURL is redis.url taken apart by ParseRedisURL. The options in Query
// are not interpreted here (the Redis client does that).
type RedisURL struct {
	Mode RedisMode
	// TLS is set by the rediss, rediss+cluster and rediss+sentinel
	// schemes; it applies to every connection, sentinels included.
	TLS bool
	// Socket is the path of a unix:// URL ("" for TCP).
	Socket string
	// Username and Password are the URL's user information, for the Redis
	// servers (never for the sentinels, see the sentinel_auth option).
	Username    string
	Password    string
	HasPassword bool
	// Addrs are host:port of the server, the cluster's seed nodes or the
	// sentinels, with the default port filled in.
	Addrs []string
	// Master is the Sentinel master name.
	Master string
	// DB is the database number of the path (standalone and Sentinel); a
	// "db" option in Query may override it.
	DB    int
	Query url.Values
}

// redisSchemes maps each accepted scheme to its mode and TLS; plain redis
// and rediss URLs become Cluster URLs when they list several hosts.
var redisSchemes = map[string]struct {
	mode RedisMode
	tls  bool
}{
	"redis":           {RedisStandalone, false},
	"rediss":          {RedisStandalone, true},
	"unix":            {RedisStandalone, false},
	"redis+cluster":   {RedisCluster, false},
	"rediss+cluster":  {RedisCluster, true},
	"redis+sentinel":  {RedisSentinel, false},
	"rediss+sentinel": {RedisSentinel, true},
	"sentinel":        {RedisSentinel, false},
}

const redisURLForms = "expected redis://[user[:password]@]host[:port][/db], rediss://..., " +
	"redis://host1:port,host2:port or redis+cluster://host:port (Cluster), " +
	"redis+sentinel://host1:26379,host2:26379/master[/db] (Sentinel) or unix:///path"

// ParseRedisURL takes redis.url apart and checks its structure: the
// scheme, every host and port, the path (database number, or the Sentinel
// master name). Several comma-separated hosts are Cluster seed nodes
// (redis, rediss, redis+cluster) or sentinels (redis+sentinel, sentinel).
// Errors never quote the user information, which may hold a password.
func ParseRedisURL(s string) (RedisURL, error) {
	var u RedisURL
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return u, errors.New("invalid URL: " + redisURLForms)
	}
	scheme = strings.ToLower(scheme)
	m, ok := redisSchemes[scheme]
	if !ok {
		return u, fmt.Errorf("unsupported URL scheme %q: expected redis, rediss, redis+cluster, rediss+cluster, redis+sentinel, rediss+sentinel, sentinel or unix", scheme)
	}
	u.Mode, u.TLS = m.mode, m.tls

	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	hosts := authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		user, pass, hasPass := strings.Cut(authority[:i], ":")
		var err error
		if u.Username, err = url.PathUnescape(user); err != nil {
			return u, errors.New("invalid URL: bad escape in the user name")
		}
		if u.Password, err = url.PathUnescape(pass); err != nil {
			return u, errors.New("invalid URL: bad escape in the password")
		}
		u.HasPassword = hasPass
		hosts = authority[i+1:]
	}
	t, err := url.Parse("x://h" + tail)
	if err != nil {
		return u, errors.New("invalid URL: bad path or query: " + redisURLForms)
	}
	if t.Fragment != "" || strings.Contains(tail, "#") {
		return u, errors.New("invalid URL: a fragment (#...) is not allowed")
	}
	if u.Query, err = url.ParseQuery(t.RawQuery); err != nil {
		return u, fmt.Errorf("invalid URL: bad query: %w", err)
	}
	for _, secret := range []string{"password", "sentinel_password"} {
		if u.Query.Has(secret) {
			return u, fmt.Errorf("option %s is not allowed in the URL: put the password in the user information (redis://:password@host) or in redis.password", secret)
		}
	}

	if scheme == "unix" {
		if hosts != "" {
			return u, errors.New("invalid URL: a unix URL has no host: expected unix:///path/to/redis.sock")
		}
		if t.Path == "" || t.Path == "/" {
			return u, errors.New("invalid URL: empty socket path: expected unix:///path/to/redis.sock")
		}
		u.Socket = t.Path
		return u, nil
	}

	if hosts == "" {
		return u, errors.New("invalid URL: no host: " + redisURLForms)
	}
	defPort := DefaultRedisPort
	if u.Mode == RedisSentinel {
		defPort = DefaultSentinelPort
	}
	seen := map[string]bool{}
	for h := range strings.SplitSeq(hosts, ",") {
		addr, err := redisHostPort(h, defPort)
		if err != nil {
			return u, err
		}
		if seen[addr] {
			return u, fmt.Errorf("invalid URL: host %s listed twice", addr)
		}
		seen[addr] = true
		u.Addrs = append(u.Addrs, addr)
	}
	if u.Mode == RedisStandalone && len(u.Addrs) > 1 {
		u.Mode = RedisCluster
	}

	segs := strings.FieldsFunc(t.Path, func(r rune) bool { return r == '/' })
	if strings.Contains(t.Path, "//") {
		return u, errors.New("invalid URL: empty path segment")
	}
	switch u.Mode {
	case RedisSentinel:
		if len(segs) == 0 {
			return u, errors.New("invalid URL: no master name: expected redis+sentinel://host1:26379,host2:26379/master[/db]")
		}
		if len(segs) > 2 {
			return u, fmt.Errorf("invalid URL path %q: expected /master[/db]", t.Path)
		}
		if u.Master, err = url.PathUnescape(segs[0]); err != nil || u.Master == "" {
			return u, errors.New("invalid URL: bad master name")
		}
		segs = segs[1:]
	default:
		if len(segs) > 1 {
			return u, fmt.Errorf("invalid URL path %q: expected /db (a database number)", t.Path)
		}
	}
	if len(segs) == 1 {
		db, err := strconv.Atoi(segs[0])
		if err != nil || db < 0 {
			return u, fmt.Errorf("invalid database number %q: expected a number 0 or more", segs[0])
		}
		u.DB = db
	}
	if u.Mode == RedisCluster && u.DB != 0 {
		return u, fmt.Errorf("database %d: Redis Cluster has only database 0", u.DB)
	}
	return u, nil
}

// redisHostPort checks one host[:port] of redis.url and returns host:port.
func redisHostPort(h, defPort string) (string, error) {
	if h == "" {
		return "", errors.New("invalid URL: empty host in the host list")
	}
	host, port := h, ""
	switch {
	case strings.HasPrefix(h, "["):
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("invalid host %q: unclosed [", h)
		}
		host, port = h[1:end], h[end+1:]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return "", fmt.Errorf("invalid host %q: expected an IPv6 address in brackets", h)
		}
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", fmt.Errorf("invalid host %q: expected [ipv6]:port", h)
		}
		port = strings.TrimPrefix(port, ":")
	case strings.Count(h, ":") > 1:
		return "", fmt.Errorf("invalid host %q: write an IPv6 address in brackets, as [::1]:6379", h)
	case strings.Contains(h, ":"):
		host, port, _ = strings.Cut(h, ":")
	}
	if host == "" {
		return "", fmt.Errorf("invalid host %q: empty host name", h)
	}
	if !strings.HasPrefix(h, "[") && !validRedisHost(host) {
		return "", fmt.Errorf("invalid host %q: expected a host name or an IP address", h)
	}
	if port == "" {
		port = defPort
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.HasPrefix(port, "+") {
		return "", fmt.Errorf("invalid port %q of host %q: expected 1 to 65535", port, host)
	}
	return net.JoinHostPort(host, port), nil
}

// validRedisHost accepts host names (letters, digits, '-', '_', '.') and
// IPv4 addresses.
func validRedisHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// redactRedisURL returns s without the password of its user information,
// and the password (unescaped); ok is false when s carries none.
func redactRedisURL(s string) (clean, password string, ok bool) {
	scheme, rest, found := strings.Cut(s, "://")
	if !found {
		return s, "", false
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return s, "", false
	}
	user, pass, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return s, "", false
	}
	pw, err := url.PathUnescape(pass)
	if err != nil {
		pw = pass
	}
	if user != "" {
		user += "@"
	}
	return scheme + "://" + user + rest[at+1:], pw, true
}

package service

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/rules"
)

func TestParseRedisURL(t *testing.T) {
	type want struct {
		addrs            []string
		cluster          bool
		master           string
		db               int
		user, pass       string
		sentinelUser     string
		sentinelPass     string
		tls, skipVerify  bool
		dialTimeout      time.Duration
		readTimeout      time.Duration
		poolSize         int
		maxRedirects     int
		protocol         int
		clientName       string
		client           string // "plain", "cluster" or "failover": what NewUniversalClient builds
		maxRetries       int
		connMaxIdleTime  time.Duration
		connMaxLifetime  time.Duration
		minRetryBackoff  time.Duration
		dialerRetries    int
		maxActiveConns   int
		writeTimeout     time.Duration
		poolTimeout      time.Duration
		maxIdleConns     int
		minIdleConns     int
		maxRetryBackoff  time.Duration
		checkAllOptional bool
	}
	tests := []struct {
		name string
		url  string
		want want
	}{
		{"default", "redis://127.0.0.1:6379/0", want{addrs: []string{"127.0.0.1:6379"}, client: "plain"}},
		{"default port and db", "redis://redis.internal/3", want{addrs: []string{"redis.internal:6379"}, db: 3, client: "plain"}},
		{"no path", "redis://h", want{addrs: []string{"h:6379"}, client: "plain"}},
		{"user and password", "redis://app:s%40cret@h:7000/1", want{addrs: []string{"h:7000"}, db: 1, user: "app", pass: "s@cret", client: "plain"}},
		{"password only", "redis://:pw@h", want{addrs: []string{"h:6379"}, pass: "pw", client: "plain"}},
		{"tls", "rediss://h:6380?skip_verify=true", want{addrs: []string{"h:6380"}, tls: true, skipVerify: true, client: "plain"}},
		{"ipv6", "redis://[::1]:6379/2", want{addrs: []string{"[::1]:6379"}, db: 2, client: "plain"}},
		{"unix", "unix:///run/redis.sock?db=4", want{addrs: []string{"/run/redis.sock"}, db: 4, client: "plain"}},
		{"db option overrides path", "redis://h/1?db=2", want{addrs: []string{"h:6379"}, db: 2, client: "plain"}},
		{"options", "redis://h?dial_timeout=3&read_timeout=250ms&pool_size=20&protocol=2&client_name=gw",
			want{addrs: []string{"h:6379"}, dialTimeout: 3 * time.Second, readTimeout: 250 * time.Millisecond, poolSize: 20, protocol: 2, clientName: "gw", client: "plain"}},
		{"every common option",
			"redis://h?write_timeout=2s&pool_timeout=4s&conn_max_idle_time=1m&conn_max_lifetime=1h&min_retry_backoff=10ms&max_retry_backoff=1s&max_retries=-1&dialer_retries=2&min_idle_conns=1&max_idle_conns=5&max_active_conns=50",
			want{addrs: []string{"h:6379"}, client: "plain", checkAllOptional: true, writeTimeout: 2 * time.Second, poolTimeout: 4 * time.Second,
				connMaxIdleTime: time.Minute, connMaxLifetime: time.Hour, minRetryBackoff: 10 * time.Millisecond, maxRetryBackoff: time.Second,
				maxRetries: -1, dialerRetries: 2, minIdleConns: 1, maxIdleConns: 5, maxActiveConns: 50}},

		{"several hosts are a cluster", "redis://:pw@n1:7000,n2:7001,n3", want{addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, cluster: true, pass: "pw", client: "cluster"}},
		{"cluster db 0 allowed", "redis://n1:7000,n2:7001/0", want{addrs: []string{"n1:7000", "n2:7001"}, cluster: true, client: "cluster"}},
		{"one cluster seed", "redis+cluster://cfg.cache.example:6379?max_redirects=5",
			want{addrs: []string{"cfg.cache.example:6379"}, cluster: true, maxRedirects: 5, client: "cluster"}},
		{"cluster tls, ipv6 seeds", "rediss+cluster://[fd00::1]:7000,[fd00::2]:7000",
			want{addrs: []string{"[fd00::1]:7000", "[fd00::2]:7000"}, cluster: true, tls: true, client: "cluster"}},

		{"sentinel", "redis+sentinel://:pw@s1:26379,s2:26380/mymaster/0",
			want{addrs: []string{"s1:26379", "s2:26380"}, master: "mymaster", pass: "pw", client: "failover"}},
		{"sentinel alias and default port", "sentinel://s1,s2/mymaster/2",
			want{addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", db: 2, client: "failover"}},
		{"sentinel auth shares the credentials", "redis+sentinel://app:pw@s1/mymaster?sentinel_auth=true",
			want{addrs: []string{"s1:26379"}, master: "mymaster", user: "app", pass: "pw", sentinelUser: "app", sentinelPass: "pw", client: "failover"}},
		{"sentinel username", "redis+sentinel://:pw@s1/m?sentinel_auth=true&sentinel_username=watch",
			want{addrs: []string{"s1:26379"}, master: "m", pass: "pw", sentinelUser: "watch", sentinelPass: "pw", client: "failover"}},
		{"sentinel tls", "rediss+sentinel://s1/m", want{addrs: []string{"s1:26379"}, master: "m", tls: true, client: "failover"}},
		{"scheme case", "REDIS+SENTINEL://s1/m", want{addrs: []string{"s1:26379"}, master: "m", client: "failover"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseRedisURL(tt.url)
			if err != nil {
				t.Fatalf("ParseRedisURL(%q): %v", tt.url, err)
			}
			w := tt.want
			if strings.Join(o.Addrs, " ") != strings.Join(w.addrs, " ") {
				t.Errorf("Addrs = %q, want %q", o.Addrs, w.addrs)
			}
			check := func(what string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}
			check("IsClusterMode", o.IsClusterMode, w.cluster)
			check("MasterName", o.MasterName, w.master)
			check("DB", o.DB, w.db)
			check("Username", o.Username, w.user)
			check("Password", o.Password, w.pass)
			check("SentinelUsername", o.SentinelUsername, w.sentinelUser)
			check("SentinelPassword", o.SentinelPassword, w.sentinelPass)
			check("TLS", o.TLSConfig != nil, w.tls)
			if o.TLSConfig != nil {
				check("InsecureSkipVerify", o.TLSConfig.InsecureSkipVerify, w.skipVerify)
				check("MinVersion TLS 1.2", o.TLSConfig.MinVersion >= 0x0303, true)
			}
			check("DialTimeout", o.DialTimeout, w.dialTimeout)
			check("ReadTimeout", o.ReadTimeout, w.readTimeout)
			check("PoolSize", o.PoolSize, w.poolSize)
			check("MaxRedirects", o.MaxRedirects, w.maxRedirects)
			check("Protocol", o.Protocol, w.protocol)
			check("ClientName", o.ClientName, w.clientName)
			if w.checkAllOptional {
				check("WriteTimeout", o.WriteTimeout, w.writeTimeout)
				check("PoolTimeout", o.PoolTimeout, w.poolTimeout)
				check("ConnMaxIdleTime", o.ConnMaxIdleTime, w.connMaxIdleTime)
				check("ConnMaxLifetime", o.ConnMaxLifetime, w.connMaxLifetime)
				check("MinRetryBackoff", o.MinRetryBackoff, w.minRetryBackoff)
				check("MaxRetryBackoff", o.MaxRetryBackoff, w.maxRetryBackoff)
				check("MaxRetries", o.MaxRetries, w.maxRetries)
				check("DialerRetries", o.DialerRetries, w.dialerRetries)
				check("MinIdleConns", o.MinIdleConns, w.minIdleConns)
				check("MaxIdleConns", o.MaxIdleConns, w.maxIdleConns)
				check("MaxActiveConns", o.MaxActiveConns, w.maxActiveConns)
			}
			// The universal client picks the deployment from the options;
			// building it does not dial.
			c := redis.NewUniversalClient(o)
			defer c.Close()
			got := "plain"
			switch c.(type) {
			case *redis.ClusterClient:
				got = "cluster"
			case *redis.Client:
				if o.MasterName != "" {
					got = "failover"
				}
			default:
				got = "other"
			}
			check("client", got, w.client)
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []struct{ url, want string }{
		{"", "invalid URL"},
		{"127.0.0.1:6379", "invalid URL"},
		{"http://:" + secret + "@h:6379", `unsupported URL scheme "http"`},
		{"redis://", "no host"},
		{"redis://:" + secret + "@", "no host"},
		{"redis://h:0", `invalid port "0"`},
		{"redis://h:65536", `invalid port "65536"`},
		{"redis://h:x", `invalid port "x"`},
		{"redis://h:+1", `invalid port "+1"`},
		{"redis://::1:6379", "IPv6 address in brackets"},
		{"redis://[::1:6379", "unclosed ["},
		{"redis://[1.2.3.4]:6379", "expected an IPv6 address"},
		{"redis://[::1]x", "expected [ipv6]:port"},
		{"redis://h*st", "expected a host name or an IP address"},
		{"redis://:6379", "empty host name"},
		{"redis://a:1,,b:2", "empty host"},
		{"redis://a:1,a:1", "listed twice"},
		{"redis://h/x", `invalid database number "x"`},
		{"redis://h/-1", `invalid database number "-1"`},
		{"redis://h/1/2", "expected /db"},
		{"redis://h//1", "empty path segment"},
		{"redis://h/0#frag", "fragment"},
		{"redis://n1,n2/1", "Redis Cluster has only database 0"},
		{"redis+cluster://n1?db=1", "option db does not apply to a cluster URL"},
		{"redis+sentinel://s1", "no master name"},
		{"redis+sentinel://s1/m/1/2", "expected /master[/db]"},
		{"redis+sentinel://s1/m/x", `invalid database number "x"`},
		{"unix://h/run/redis.sock", "a unix URL has no host"},
		{"unix://", "empty socket path"},
		{"redis://h?password=" + secret, "option password is not allowed"},
		{"redis+sentinel://s1/m?sentinel_password=" + secret, "option sentinel_password is not allowed"},
		{"redis://h?bogus=1", `unknown option "bogus"`},
		{"redis://h?dial_timeout=soon", "option dial_timeout"},
		{"redis://h?dial_timeout=0", "must be positive"},
		{"redis://h?read_timeout=-1s", "must be positive"},
		{"redis://h?pool_size=0", "option pool_size"},
		{"redis://h?protocol=4", "option protocol"},
		{"redis://h?client_name=a%20b", "option client_name"},
		{"redis://h?pool_size=1&pool_size=2", "given 2 times"},
		{"redis://h?skip_verify=true", "needs a TLS scheme"},
		{"rediss://h?skip_verify=maybe", "expected true or false"},
		{"redis://h?max_redirects=3", "does not apply to a standalone URL"},
		{"redis://h?sentinel_auth=true", "does not apply to a standalone URL"},
		{"redis+sentinel://s1/m?sentinel_auth=perhaps", "option sentinel_auth"},
		{"redis+cluster://n1?read_only=true", "replica reads are not supported"},
		{"redis+sentinel://s1/m?route_randomly=true", "replica reads are not supported"},
		{"redis://h?bad=%zz", "bad query"},
		{"redis://:" + secret + "%zz@h", "bad escape in the password"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := ParseRedisURL(tt.url)
			if err == nil {
				t.Fatalf("ParseRedisURL(%q): no error, want %q", tt.url, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the password: %q", err)
			}
		})
	}
}

func TestRedisOptionsPassword(t *testing.T) {
	tests := []struct {
		name                 string
		url, password        string
		wantPass, wantSentPw string
	}{
		{"redis.password wins", "redis://:url-pw@h", "cfg-pw", "cfg-pw", ""},
		{"url password kept", "redis://:url-pw@h", "", "url-pw", ""},
		{"sentinel without auth", "redis+sentinel://s/m", "cfg-pw", "cfg-pw", ""},
		{"sentinel auth takes redis.password", "redis+sentinel://s/m?sentinel_auth=1", "cfg-pw", "cfg-pw", "cfg-pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rules.Redis{URL: tt.url}
			if tt.password != "" {
				r.Password = rules.NewSecret(tt.password)
			}
			o, err := RedisOptions(r)
			if err != nil {
				t.Fatal(err)
			}
			if o.Password != tt.wantPass || o.SentinelPassword != tt.wantSentPw {
				t.Errorf("Password %q, SentinelPassword %q; want %q, %q", o.Password, o.SentinelPassword, tt.wantPass, tt.wantSentPw)
			}
		})
	}
}

func TestRedisAddrDesc(t *testing.T) {
	for url, want := range map[string]string{
		"redis://:pw@h:1":           "h:1",
		"redis://a:1,b:2":           "cluster a:1,b:2",
		"redis+cluster://a:1":       "cluster a:1",
		"redis+sentinel://:pw@s/m0": `sentinel master "m0" via s:26379`,
	} {
		o, err := ParseRedisURL(url)
		if err != nil {
			t.Fatal(err)
		}
		if got := RedisAddrDesc(o); got != want {
			t.Errorf("RedisAddrDesc(%s) = %q, want %q", url, got, want)
		}
	}
}

// FuzzParseRedisURL: any input either fails with an error that does not
// quote the URL's password, or gives options the universal client can use:
// addresses, and exactly one deployment mode.
func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0", "rediss://:pw@h:6380/1?skip_verify=true", "redis://n1:7000,n2:7001",
		"redis+cluster://[::1]:7000?max_redirects=3", "redis+sentinel://:pw@s1,s2:26380/mymaster/2?sentinel_auth=true",
		"sentinel://s/m", "unix:///tmp/r.sock?db=1", "redis://h?dial_timeout=3&read_timeout=1s", "redis://[::1",
		"redis://a:1,,b", "redis://h/1/2", "http://x", "redis://:p%40ss@h", "redis://u:p@h:1?password=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseRedisURL(s)
		if err != nil {
			if u, perr := rules.ParseRedisURL(s); perr == nil && len(u.Password) >= 4 && strings.Contains(err.Error(), u.Password) {
				t.Fatalf("error quotes the password: %q", err)
			}
			return
		}
		if len(o.Addrs) == 0 {
			t.Fatalf("%q: no addresses", s)
		}
		if o.MasterName != "" && o.IsClusterMode {
			t.Fatalf("%q: both sentinel and cluster", s)
		}
		if len(o.Addrs) > 1 && o.MasterName == "" && !o.IsClusterMode {
			t.Fatalf("%q: several addresses but not a cluster", s)
		}
		if o.IsClusterMode && o.DB != 0 {
			t.Fatalf("%q: cluster with database %d", s, o.DB)
		}
	})
}

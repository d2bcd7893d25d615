package rules

import (
	"strings"
	"testing"
)

func TestRedactRedisURL(t *testing.T) {
	tests := []struct {
		in, clean, pw string
		ok            bool
	}{
		{"redis://h:6379/0", "redis://h:6379/0", "", false},
		{"redis://u@h/0", "redis://u@h/0", "", false},
		{"redis://:pw@h/0", "redis://h/0", "pw", true},
		{"redis://u:p%40ss@h:1/2?dial_timeout=3", "redis://u@h:1/2?dial_timeout=3", "p@ss", true},
		{"redis://:p@ss@h", "redis://h", "p@ss", true},
		{"redis+sentinel://:pw@s1:26379,s2/mymaster/0", "redis+sentinel://s1:26379,s2/mymaster/0", "pw", true},
		{"rediss+cluster://app:pw@[::1]:7000,[::2]:7000", "rediss+cluster://app@[::1]:7000,[::2]:7000", "pw", true},
		{"unix://:pw@/run/redis.sock?db=1", "unix:///run/redis.sock?db=1", "pw", true},
		{"redis://h/0?x=a@b:c", "redis://h/0?x=a@b:c", "", false}, // an @ after the host is not user information
	}
	for _, tt := range tests {
		clean, pw, ok := redactRedisURL(tt.in)
		if clean != tt.clean || pw != tt.pw || ok != tt.ok {
			t.Errorf("redactRedisURL(%q) = %q, %q, %v; want %q, %q, %v", tt.in, clean, pw, ok, tt.clean, tt.pw, tt.ok)
		}
	}
}

func TestParseRedisURLModes(t *testing.T) {
	tests := []struct {
		in     string
		mode   RedisMode
		addrs  string
		master string
		db     int
		tls    bool
	}{
		{"redis://h", RedisStandalone, "h:6379", "", 0, false},
		{"rediss://h:1/5", RedisStandalone, "h:1", "", 5, true},
		{"unix:///run/r.sock", RedisStandalone, "", "", 0, false},
		{"redis://a:1,b:2", RedisCluster, "a:1 b:2", "", 0, false},
		{"redis+cluster://a", RedisCluster, "a:6379", "", 0, false},
		{"rediss+cluster://a,b", RedisCluster, "a:6379 b:6379", "", 0, true},
		{"redis+sentinel://s1,s2:1/m/3", RedisSentinel, "s1:26379 s2:1", "m", 3, false},
		{"sentinel://s1/my%20master", RedisSentinel, "s1:26379", "my master", 0, false},
		{"rediss+sentinel://s1/m", RedisSentinel, "s1:26379", "m", 0, true},
	}
	for _, tt := range tests {
		u, err := ParseRedisURL(tt.in)
		if err != nil {
			t.Errorf("ParseRedisURL(%q): %v", tt.in, err)
			continue
		}
		if u.Mode != tt.mode || strings.Join(u.Addrs, " ") != tt.addrs || u.Master != tt.master || u.DB != tt.db || u.TLS != tt.tls {
			t.Errorf("ParseRedisURL(%q) = %+v", tt.in, u)
		}
	}
}

// TestRedisURLPasswordMoved: the loader moves the password out of every
// form of redis.url, so that the URL can be printed.
func TestRedisURLPasswordMoved(t *testing.T) {
	for in, want := range map[string]string{
		"redis+sentinel://:s3cret@s1:26379,s2:26379/mymaster/0": "redis+sentinel://s1:26379,s2:26379/mymaster/0",
		"redis://app:s3cret@n1:7000,n2:7001":                    "redis://app@n1:7000,n2:7001",
		"rediss+cluster://:s3cret@[::1]:7000":                   "rediss+cluster://[::1]:7000",
	} {
		cfg, err := Parse("gateway.yaml", []byte(minimal(`mailbox: {host: imap.example, password: pw}
smtp: {host: smtp.example}
redis: {url: "`+in+`"}
`)), LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if cfg.Redis.URL != want || cfg.Redis.Password.Reveal() != "s3cret" {
			t.Errorf("%s: url %q password %q; want %q", in, cfg.Redis.URL, cfg.Redis.Password.Reveal(), want)
		}
	}
}

package service_test

import (
	"slices"
	"testing"

	"github.com/northwind-it/ticketgw/classify"
	"github.com/northwind-it/ticketgw/service"
)

func TestOrderKeys(t *testing.T) {
	cfg := qbrCfg(t, nil)
	p := &service.Pipeline{Cfg: cfg, Classifier: classify.New(cfg)}
	tests := []struct {
		name string
		raw  string
		want []string
	}{
		{"customer", "From: Yossi <Yossi@acme.co.il>\r\nSubject: printer\r\nMessage-ID: <X1@acme.co.il>\r\n\r\nbody\r\n",
			[]string{"contract:acme (until released)", "mid:x1@acme.co.il"}},
		{"customer replying to a thread", "From: dana@acme.co.il\r\nSubject: Re: printer\r\nMessage-ID: <x2@acme.co.il>\r\nIn-Reply-To: <X1@acme.co.il>\r\nReferences: <x0@acme.co.il> <x1@acme.co.il>\r\n\r\n",
			[]string{"contract:acme (until released)", "mid:x2@acme.co.il", "mid:x1@acme.co.il (until released)", "mid:x0@acme.co.il (until released)"}},
		{"customer follow-up by tag", "From: dana@branch.acme.co.il\r\nSubject: RE: [ACME-0042] printer\r\n\r\n",
			[]string{"contract:acme"}},
		{"customer follow-up by our ack's id", "From: dana@acme.co.il\r\nSubject: thanks\r\nIn-Reply-To: <ack.ACME-0042.abc@northwind-it.example>\r\n\r\n",
			[]string{"contract:acme", "mid:ack.acme-0042.abc@northwind-it.example (until released)"}},
		{"customer naming another customer's ticket", "From: dana@acme.co.il\r\nSubject: about [GLOBEX-0007]\r\n\r\n",
			[]string{"contract:acme (until released)", "contract:globex"}},
		{"staff reply with an encoded tag", "From: Tech <tech@northwind-it.example>\r\nSubject: =?UTF-8?Q?Re:_[acme-42]_=D7=A9=D7=9C=D7=95=D7=9D?=\r\nMessage-ID: <s1@northwind-it.example>\r\n\r\n#resolve\r\n",
			[]string{"staff", "contract:acme", "mid:s1@northwind-it.example"}},
		{"staff reply threaded by our forward's id", "From: tech@northwind-it.example\r\nSubject: Re: printer\r\nIn-Reply-To: <fwd.INITECH-0007.abcdef@northwind-it.example>\r\n\r\n",
			[]string{"staff", "mid:fwd.initech-0007.abcdef@northwind-it.example (until released)", "contract:initech"}},
		{"another domain answering acme's mail", "From: partner@vendor.example\r\nSubject: Re: printer\r\nIn-Reply-To: <x1@acme.co.il>\r\nReferences: <x0@acme.co.il> <x1@acme.co.il>\r\n\r\n",
			[]string{"no-contract", "mid:x1@acme.co.il (until released)", "mid:x0@acme.co.il (until released)"}},
		{"a tag of no contract", "From: someone@gmail.com\r\nSubject: [NOPE-0001] hello\r\n\r\n",
			[]string{"no-contract"}},
		{"no header at all", "\x00\xff garbage", []string{"no-contract"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, k := range p.OrderKeys([]byte(tc.raw)) {
				if !k.AtTurn {
					t.Errorf("key %s is waited for before the handler begins: the pipeline takes its turn itself", k)
				}
				k.AtTurn = false
				got = append(got, k.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("OrderKeys = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzOrderKeys(f *testing.F) {
	f.Add([]byte("From: a@acme.co.il\r\nSubject: [ACME-0001]\r\nReferences: <fwd.ACME-0001.x@y>\r\n\r\n"))
	f.Add([]byte("Subject: =?utf-8?b?W0FDTUUtMV0=?=\r\n\r\n"))
	f.Add([]byte{})
	p := &service.Pipeline{Cfg: qbrCfg(f, nil)}
	f.Fuzz(func(t *testing.T, raw []byte) {
		keys := p.OrderKeys(raw)
		if len(keys) == 0 {
			t.Fatal("no keys: the message would not be ordered after its sender's")
		}
		var names []string
		for _, k := range keys {
			names = append(names, k.Name)
		}
		if len(names) != len(slices.Compact(slices.Sorted(slices.Values(names)))) {
			t.Fatalf("duplicate keys %q", keys)
		}
	})
}

package httpapi

import "testing"

func TestHostPolicy(t *testing.T) {
	loopback := newHostPolicy(Options{})
	allowed := newHostPolicy(Options{AllowedHosts: []string{"Watch.Example.com", "192.0.2.7"}})
	exposed := newHostPolicy(Options{Exposed: true})
	narrowed := newHostPolicy(Options{Exposed: true, AllowedHosts: []string{"nas.local"}})
	proxied := newHostPolicy(Options{WebhookSecret: "s",
		WebhookURL: "https://hooks.example.com/webhooks/mosaic"})
	unsigned := newHostPolicy(Options{WebhookURL: "https://hooks.example.com/webhooks/mosaic"})
	tests := []struct {
		name       string
		p          hostPolicy
		host, path string
		want       bool
	}{
		{"localhost", loopback, "localhost:8787", "/", true},
		{"localhost, no port", loopback, "localhost", "/", true},
		{"LOCALHOST", loopback, "LOCALHOST:8787", "/", true},
		{"127.0.0.1", loopback, "127.0.0.1:8787", "/", true},
		{"127.0.0.1, no port", loopback, "127.0.0.1", "/", true},
		{"other loopback address", loopback, "127.0.0.53:8787", "/", true},
		{"::1", loopback, "[::1]:8787", "/", true},
		{"::1, no port", loopback, "[::1]", "/", true},
		{"attacker", loopback, "attacker.example:8787", "/", false},
		{"localhost as a subdomain", loopback, "localhost.attacker.example", "/", false},
		{"name that looks like an address", loopback, "127.0.0.1.nip.io:8787", "/", false},
		{"trailing dot", loopback, "localhost.:8787", "/", false},
		{"LAN address", loopback, "192.168.1.10:8787", "/", false},
		{"empty", loopback, "", "/", false},
		{"allowed name", allowed, "watch.example.com:443", "/", true},
		{"allowed name, other case", allowed, "WATCH.example.COM", "/", true},
		{"allowed address", allowed, "192.0.2.7", "/", true},
		{"allowed list keeps loopback", allowed, "localhost:8787", "/", true},
		{"not in the list", allowed, "example.com", "/", false},
		{"exposed: the token guards", exposed, "anything.example", "/", true},
		{"exposed and narrowed", narrowed, "nas.local:8787", "/", true},
		{"exposed and narrowed: loopback", narrowed, "127.0.0.1", "/", true},
		{"exposed and narrowed: other", narrowed, "192.0.2.9", "/", false},
		{"public_url host on the webhook route", proxied, "hooks.example.com", webhookPath, true},
		{"public_url host elsewhere", proxied, "hooks.example.com", "/api/jobs", false},
		{"public_url without a secret", unsigned, "hooks.example.com", webhookPath, false},
	}
	for _, tc := range tests {
		if got := tc.p.allows(tc.host, tc.path); got != tc.want {
			t.Errorf("%s: allows(%q, %q) = %v, want %v", tc.name, tc.host, tc.path, got, tc.want)
		}
	}
}

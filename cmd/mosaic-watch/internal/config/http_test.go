package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadConfigAllowedHosts(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, minimal+"http:\n  listen: 127.0.0.1:8787\n  allowed_hosts:\n"+
		"    - Watch.Example.com\n    - 192.0.2.7\n    - \"[2001:db8::1]\"\n", defaultTestEnv)
	want := []string{"watch.example.com", "192.0.2.7", "2001:db8::1"}
	if !reflect.DeepEqual(cfg.HTTPAllowedHosts, want) {
		t.Errorf("HTTPAllowedHosts = %q, want %q", cfg.HTTPAllowedHosts, want)
	}
	if cfg.HTTPExposed() {
		t.Error("127.0.0.1 counts as exposed")
	}
	for listen, exposed := range map[string]bool{"0.0.0.0:8787": true, ":8787": true,
		"192.168.1.5:8787": true, "localhost:8787": false, "[::1]:8787": false} {
		cfg := loadOK(t, dir, minimal+"http:\n  token: t\n  listen: \""+listen+"\"\n", defaultTestEnv)
		if cfg.HTTPExposed() != exposed {
			t.Errorf("listen %s: HTTPExposed = %v, want %v", listen, !exposed, exposed)
		}
	}

	for name, tc := range map[string]struct{ hosts, frag string }{
		"url":      {"[https://watch.example.com]", "not a URL"},
		"path":     {"[watch.example.com/x]", "not a URL"},
		"port":     {"[watch.example.com:8787]", "without the port"},
		"wildcard": {"[\"*.example.com\"]", "no wildcards"},
		"space":    {"[\"watch example\"]", "is not a host name"},
		"empty":    {"[]", "an empty list accepts no host name"},
		"not list": {"watch.example.com", "expected a list"},
	} {
		body := minimal + "http:\n  listen: 127.0.0.1:8787\n  allowed_hosts: " + tc.hosts + "\n"
		_, err := Load(writeConfig(t, dir, body, 0o600), defaultTestEnv)
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 || list[0].Line != 9 ||
			!strings.HasPrefix(list[0].Path, "http.allowed_hosts") ||
			!strings.Contains(list[0].Msg, tc.frag) {
			t.Errorf("%s: err = %v, want one problem at http.allowed_hosts, line 9, with %q",
				name, err, tc.frag)
		}
	}
}

func TestLoadConfigWebhookWithoutSecret(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, minimal+"http:\n  listen: 127.0.0.1:8787\nwebhook:\n"+
		"  public_url: https://watch.example.com/webhooks/mosaic\n", defaultTestEnv)
	want := filepath.Join(dir, "config.yaml") + ":10: webhook.public_url: is set but " +
		"webhook.secret is not"
	if len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0], want) {
		t.Errorf("Warnings = %q, want one starting %q", cfg.Warnings, want)
	}
	cfg = loadOK(t, dir, minimal+"http:\n  listen: 127.0.0.1:8787\nwebhook:\n  secret: s\n"+
		"  public_url: https://watch.example.com/webhooks/mosaic\n", defaultTestEnv)
	if len(cfg.Warnings) != 0 {
		t.Errorf("with a secret: warnings %q", cfg.Warnings)
	}
	cfg = loadOK(t, dir, minimal+"webhook:\n  secret: s\n"+
		"  public_url: https://watch.example.com/webhooks/mosaic\n", defaultTestEnv)
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "http.listen is not set") {
		t.Errorf("without http.listen: warnings %q", cfg.Warnings)
	}
}

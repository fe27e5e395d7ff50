package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

const healthTestToken = "health-test-token-value"

// healthConfig writes a valid configuration whose http section is httpYAML (none when empty).
func healthConfig(t *testing.T, httpYAML string) string {
	t.Helper()
	return writeServiceTestConfig(t, t.TempDir(), "123e4567-e89b-12d3-a456-789012345678", "",
		httpYAML)
}

func TestHealthWithoutListenExits2AndSaysHowToEnable(t *testing.T) {
	cfg := healthConfig(t, "")
	code, out, errOut := runCLI(t, "health", "--config", cfg)
	if code != exitUsage {
		t.Fatalf("exit %d, want 2 (nothing to ask)\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, want := range []string{cfg, "no http.listen", "http:\n    listen: 127.0.0.1:8787"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "Run 'mosaic-watch help'") {
		t.Errorf("a configuration problem is not a usage mistake:\n%s", errOut)
	}
	if code, _, _ := runCLI(t, "health"); code != exitUsage {
		t.Errorf("health without --config: exit %d, want 2", code)
	}
}

func TestHealthDialAddr(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8787":  "127.0.0.1:8787",
		"0.0.0.0:8787":    "127.0.0.1:8787",
		":8787":           "127.0.0.1:8787",
		"[::]:8787":       "[::1]:8787",
		"[::1]:8787":      "[::1]:8787",
		"localhost:8787":  "localhost:8787",
		"192.0.2.10:8787": "192.0.2.10:8787",
	} {
		if got := healthDialAddr(listen); got != want {
			t.Errorf("healthDialAddr(%q) = %q, want %q", listen, got, want)
		}
	}
}

// TestHealthAnswers: every shape of /healthz answer (detailed, terse for anonymous callers,
// refusals, strangers on the port) maps to the right exit code and explanation; the token is
// sent when configured and never printed.
func TestHealthAnswers(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		status    int
		body      string
		wantCode  int
		wantTexts []string
	}{
		{"detailed ok", "", 200, `{"ok": true}`, 0, []string{"ok: the daemon at"}},
		{"terse ok", "", 200, `{"status": "ok"}`, 0, []string{"is healthy"}},
		{"plain ok", "", 200, "ok\n", 0, []string{"is healthy"}},
		{"detailed degraded", healthTestToken, 503,
			`{"ok": false, "reasons": ["folder main degraded: input folder is gone", "disk full"]}`,
			1, []string{"degraded:\n  - folder main degraded: input folder is gone\n  - disk full"}},
		{"terse degraded, no token", "", 503, `{"status": "degraded"}`, 1,
			[]string{"degraded (details need http.token"}},
		{"plain degraded with token", healthTestToken, 503, "degraded", 1,
			[]string{"degraded (the daemon gave no reason"}},
		{"200 that says degraded", "", 200, `{"ok": false}`, 1, []string{"degraded"}},
		{"wrong token", healthTestToken, 401, `{"error": "missing or wrong token"}`, 1,
			[]string{"refused (HTTP 401: missing or wrong token)", "is not the running daemon's"}},
		{"foreign host", "", 421, "misdirected", 1, []string{"HTTP 421", "http.allowed_hosts"}},
		{"no such route", "", 404, "404 page not found", 1, []string{"no /healthz here"}},
		{"a stranger on the port", "", 200, "<html>hello</html>", 1,
			[]string{"unexpected answer HTTP 200: <html>hello</html>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gotAuth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" {
					http.NotFound(w, r)
					return
				}
				gotAuth = r.Header.Get("Authorization")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			httpYAML := "http:\n  listen: " + srv.Listener.Addr().String() + "\n"
			if tc.token != "" {
				httpYAML += "  token: " + tc.token + "\n"
			}
			code, out, errOut := runCLI(t, "health", "--config", healthConfig(t, httpYAML))
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			for _, want := range tc.wantTexts {
				if !strings.Contains(out+errOut, want) {
					t.Errorf("output does not say %q:\nstdout: %s\nstderr: %s", want, out, errOut)
				}
			}
			wantAuth := ""
			if tc.token != "" {
				wantAuth = "Bearer " + tc.token
			}
			if gotAuth != wantAuth {
				t.Errorf("Authorization sent = %q, want %q", gotAuth, wantAuth)
			}
			testenv.AssertNoSecrets(t, "health output", out+errOut, healthTestToken)
		})
	}
}

func TestHealthTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the client gives up
	}))
	defer srv.Close()
	cfg := healthConfig(t, "http:\n  listen: "+srv.Listener.Addr().String()+"\n")
	start := time.Now()
	code, _, errOut := runCLI(t, "health", "--config", cfg, "--timeout", "300ms")
	if code != exitFailure || !strings.Contains(errOut, "no answer within the timeout") {
		t.Errorf("exit %d, want 1 with a timeout: %s", code, errOut)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("health took %s with --timeout 300ms", took)
	}
}

// TestE2EHealthAgainstDaemon: the real binary's health command against the real daemon over
// loopback: not running (1), healthy (0), a folder gone (1 with the reason), stopped (1).
func TestE2EHealthAgainstDaemon(t *testing.T) {
	addr := testenv.FreePort(t)
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}},
		fmt.Sprintf("http:\n  listen: %s\n  token: %s", addr, healthTestToken))
	health := func() (string, int) { return e.cli("health", "--config", e.cfg) }

	out, code := health()
	if code != 1 || !strings.Contains(out, "nothing is listening: the daemon is not running") {
		t.Fatalf("before start: exit %d, want 1 saying nothing listens:\n%s", code, out)
	}
	e.start()
	testenv.WaitFor(t, 30*time.Second, "health to say ok", func() bool {
		out, code = health()
		return code == 0
	})
	want := "ok: the daemon at http://" + addr + "/healthz is healthy"
	if !strings.Contains(out, want) {
		t.Errorf("healthy: %q, want %q", out, want)
	}

	if err := os.RemoveAll(e.path("in", "main")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "health to report the missing folder", func() bool {
		out, code = health()
		return code == 1 && strings.Contains(out, "folder main degraded")
	})
	if !strings.Contains(out, "degraded:\n  - folder main degraded") {
		t.Errorf("degraded: %q", out)
	}
	testenv.AssertNoSecrets(t, "health output", out, healthTestToken)
	e.stop()
	if out, code = health(); code != 1 {
		t.Errorf("after stop: exit %d: %s", code, out)
	}
}

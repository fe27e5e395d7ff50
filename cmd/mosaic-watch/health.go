package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
)

const healthBodyLimit = 64 << 10 // a detailed /healthz answer is a few hundred bytes

func cmdHealth(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "health", "--config FILE [--timeout DURATION]", `
Ask the running daemon whether it is healthy: GET /healthz on the address in http.listen
(0.0.0.0 and :: are reached through 127.0.0.1 and ::1), sending http.token when it is set.
Prints "ok" and exits 0 when the daemon says it is healthy; otherwise prints why (not
running, degraded with its reasons, refused) and exits 1. Container health checks use it:
a scratch image has no curl.

Exit codes: 0 healthy; 1 unhealthy or unreachable; 2 the configuration is invalid or sets
no http.listen, so there is nothing to ask (add "http: {listen: 127.0.0.1:8787}").`)
	configPath := configFlag(fs)
	timeout := fs.Duration("timeout", 5*time.Second, "give up on the daemon after this `duration`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("health: unexpected argument %q", fs.Arg(0))
	}
	if *configPath == "" {
		return usagef("health: --config FILE is required (the daemon's configuration)")
	}
	// Only the http section: a folder that is gone is for the daemon to report, not a reason
	// to be unable to ask it.
	cfg, err := config.LoadHTTP(*configPath, env.lookupEnv)
	if err != nil {
		return err
	}
	if cfg.Listen == "" {
		return &configError{fmt.Sprintf("health: %s sets no http.listen, so the daemon serves no "+
			"/healthz to ask. Enable it in the configuration and restart the daemon:\n"+
			"  http:\n    listen: 127.0.0.1:8787", cfg.File)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://" + healthDialAddr(cfg.Listen) + "/healthz"
	ans, err := askHealth(ctx, url, cfg.Token)
	if err != nil {
		return err
	}
	if err := ans.problem(cfg.Token != ""); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	fmt.Fprintf(env.stdout, "ok: the daemon at %s is healthy\n", url)
	return nil
}

// configError is a configuration that cannot do what the command needs: exit 2, like an
// invalid configuration, without the usage hint.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// healthDialAddr is where to reach a daemon listening on listen from this machine: an
// unspecified host (every interface) is reached through loopback of the same family.
func healthDialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // config validation has already rejected it; let the dial say why
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// healthAnswer is the daemon's answer to GET /healthz, in any of the shapes it takes: the
// detailed report ({"ok": false, "reasons": [...]}), the terse one an anonymous caller gets on
// a network listener ({"status": "degraded"} or plain "degraded"), or an error ({"error": ...}).
type healthAnswer struct {
	code    int
	OK      *bool    `json:"ok"`
	Status  string   `json:"status"`
	Reasons []string `json:"reasons"`
	Error   string   `json:"error"`
	text    string   // the body when it is not JSON
}

// askHealth calls url once, with the token when there is one; it follows no redirect (the
// token stays with this daemon) and uses no proxy.
func askHealth(ctx context.Context, url, token string) (*healthAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	req.Header.Set("User-Agent", "mosaic-watch-health/"+version)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, unreachable(url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, healthBodyLimit))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer (HTTP %d): %w", url, resp.StatusCode, err)
	}
	ans := &healthAnswer{code: resp.StatusCode}
	if json.Unmarshal(body, ans) != nil {
		*ans = healthAnswer{code: resp.StatusCode, text: strings.TrimSpace(string(body))}
	}
	return ans, nil
}

// unreachable explains a failed request in the operator's terms.
func unreachable(url string, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: nothing is listening: the daemon is not running (or still "+
			"starting), or it runs with another http.listen", url)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer within the timeout: the daemon is stuck or busy, or "+
			"a firewall drops the connection", url)
	}
	return fmt.Errorf("%s: %w", url, err)
}

// problem is why the answer does not say ok (nil when it does). withToken tells whether the
// request carried http.token, which a daemon may require before it explains itself.
func (a *healthAnswer) problem(withToken bool) error {
	saysOK := (a.OK != nil && *a.OK) || strings.EqualFold(a.Status, "ok") ||
		strings.EqualFold(a.text, "ok")
	saysDegraded := (a.OK != nil && !*a.OK) || strings.EqualFold(a.Status, "degraded") ||
		strings.EqualFold(a.text, "degraded")
	switch {
	case a.code == http.StatusOK && saysOK && !saysDegraded:
		return nil
	case a.code == http.StatusServiceUnavailable || (a.code == http.StatusOK && saysDegraded):
		if len(a.Reasons) > 0 {
			return fmt.Errorf("degraded:\n  - %s", strings.Join(a.Reasons, "\n  - "))
		}
		if withToken {
			return errors.New("degraded (the daemon gave no reason; see its log or " +
				"'mosaic-watch status')")
		}
		return errors.New("degraded (details need http.token: set it in the configuration, " +
			"or see the daemon's log)")
	case a.code == http.StatusUnauthorized || a.code == http.StatusForbidden:
		hint := "set http.token in this configuration to the daemon's token"
		if withToken {
			hint = "http.token in this configuration is not the running daemon's token"
		}
		return fmt.Errorf("refused (HTTP %d%s): %s", a.code, a.detail(), hint)
	case a.code == http.StatusMisdirectedRequest:
		return fmt.Errorf("refused (HTTP %d%s): the daemon does not accept this host name; "+
			"check http.allowed_hosts", a.code, a.detail())
	case a.code == http.StatusNotFound:
		return fmt.Errorf("no /healthz here (HTTP 404): another program listens on this port, " +
			"or http.listen differs from the running daemon's")
	}
	return fmt.Errorf("unexpected answer HTTP %d%s", a.code, a.detail())
}

// detail is the answer's own explanation, as ": text" (or "").
func (a *healthAnswer) detail() string {
	msg := a.Error
	if msg == "" {
		msg = a.text
	}
	if msg == "" {
		return ""
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return ": " + msg
}

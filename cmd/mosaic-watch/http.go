package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// The local HTTP surface: dashboard, status API, metrics, health and Mosaic's webhooks.

const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 30 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 2 * time.Minute
	httpShutdownTimeout   = 5 * time.Second
	httpMaxHeaderBytes    = 64 << 10
	webhookMaxBody        = 1 << 20  // a RUN_FINISHED with many outputs is a few KiB
	formMaxBody           = 64 << 10 // the retry form
)

// httpServer serves one daemon's HTTP routes.
type httpServer struct {
	d         *daemon
	log       *slog.Logger
	tokenHash [32]byte // sha256 of http.token; compared in constant time
	hasToken  bool
	csrf      string // per-process value the dashboard's forms must echo back
	hooks     *webhookSeen
	diskFree  func(path string) (free, total uint64, err error)
	srv       *http.Server
	ln        net.Listener
}

func newHTTPServer(d *daemon) *httpServer {
	s := &httpServer{d: d, log: d.log.With("component", "http"), hooks: newWebhookSeen(4096), diskFree: diskFree}
	if d.cfg.HTTPToken != "" {
		s.hasToken = true
		s.tokenHash = sha256.Sum256([]byte(d.cfg.HTTPToken))
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	s.csrf = base64.RawURLEncoding.EncodeToString(b[:])
	return s
}

// listen binds http.listen. It is done before the daemon starts working, so a taken port is a
// start-up error rather than a surprise later.
func (s *httpServer) listen() error {
	ln, err := net.Listen("tcp", s.d.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w", s.d.cfg.HTTPListen, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("http listening", "addr", ln.Addr().String(), "token", s.hasToken,
		"webhook_secret", s.d.cfg.WebhookSecret != "")
	return nil
}

// serve answers requests until ctx ends, then shuts down gracefully within a bounded time.
func (s *httpServer) serve(ctx context.Context) {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
		return
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
		_ = s.srv.Close()
	}
	<-errc
}

func (s *httpServer) handler() http.Handler {
	mux := http.NewServeMux()
	// Open routes: health checks and Mosaic's callbacks (which carry their own secret).
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("POST /webhooks/mosaic", s.handleWebhook)
	// Everything else needs the token when one is configured.
	mux.Handle("GET /metrics", s.auth(s.metricsHandler()))
	mux.Handle("GET /api/status", s.auth(http.HandlerFunc(s.handleStatus)))
	mux.Handle("GET /api/jobs", s.auth(http.HandlerFunc(s.handleJobs)))
	mux.Handle("GET /api/jobs/{id}", s.auth(http.HandlerFunc(s.handleJob)))
	mux.Handle("POST /api/jobs/{id}/retry", s.auth(http.HandlerFunc(s.handleRetry)))
	mux.Handle("GET /{$}", s.auth(http.HandlerFunc(s.handleDashboard)))
	return securityHeaders(mux)
}

// auth requires http.token, when set, as "Authorization: Bearer TOKEN" (scripts, Prometheus) or
// as the password of HTTP Basic auth (so a browser can open the dashboard).
func (s *httpServer) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hasToken || s.tokenOK(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="mosaic-watch", charset="UTF-8"`)
		writeJSONError(w, http.StatusUnauthorized, "missing or wrong token (send Authorization: Bearer <http.token>)")
	})
}

func (s *httpServer) tokenOK(r *http.Request) bool {
	var given string
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(rest)
	} else if _, pw, ok := r.BasicAuth(); ok {
		given = pw
	} else {
		return false
	}
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) == 1
}

// securityHeaders keeps pages out of frames and caches and forbids loading anything from elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

package httpapi

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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
	maxHeaderBytes    = 64 << 10
	webhookMaxBody    = 1 << 20  // a RUN_FINISHED with many outputs is a few KiB
	formMaxBody       = 64 << 10 // the retry form
)

// Jobs is what the HTTP surface reads from and writes to the job store.
type Jobs interface {
	jobview.Store
	Get(ctx context.Context, id int64) (*store.Job, error)
	Reopen(ctx context.Context, j *store.Job, msg string) error
	RunIDTaken(ctx context.Context, runID string) (bool, error)
	GetMeta(ctx context.Context, key string) (string, error)
}

// Work is the running pipeline as the HTTP surface sees it.
type Work interface {
	WakePoller()                           // a run finished: fetch its status now
	Paused() string                        // why all work is paused ("" = it is not)
	Progress() map[int64]pipeline.Progress // transfers in flight, by job
}

// Folder is a watched folder as the HTTP surface shows it.
type Folder struct {
	Name, Input, Output string
	AgentID             string
}

// Live is what the running daemon knows beyond the job store and changes while it runs
// (configuration reloads, the daily run limit, backlog approvals).
type Live interface {
	Folders() []Folder   // the configured folders now
	ConfigError() string // why the last configuration reload failed ("" = it did not)
	Notices() []string   // what people should know that is not a fault (a run limit reached)
	// PendingApproval counts, by folder input, the videos that wait for `approve`.
	PendingApproval(ctx context.Context) map[string]int
	Approve(ctx context.Context, input string) (int, error) // like `mosaic-watch approve`
}

// Options is everything the HTTP surface needs, as narrow as it needs it.
type Options struct {
	Listen string // host:port
	Token  string // required from clients when set (http.token)
	// Exposed: the listener accepts connections from other machines (http.listen is not a
	// loopback address). Then any Host is served unless AllowedHosts is set, and /healthz tells
	// a caller without the token only "ok" or "degraded".
	Exposed bool
	// AllowedHosts are the host names served besides localhost and loopback addresses
	// (http.allowed_hosts).
	AllowedHosts []string
	// WebhookSecret turns the webhook route on: X-Mosaic-Signature must equal it. Empty: the
	// route is not served (404).
	WebhookSecret string
	// WebhookURL is webhook.public_url; its host name is served on the webhook route (a reverse
	// proxy may pass it on as the Host).
	WebhookURL string
	Version    string   // shown on the dashboard
	Folders    []Folder // the folders, unless Live is set
	Live       Live     // nil: Folders, and nothing beyond jobs
	StateDir   string   // its disk is checked by /healthz, with the output folders'
	Jobs       Jobs
	Work       Work
	// Instances lists the daemons sharing the job store (PostgreSQL) and the jobs each holds;
	// nil with a store of one daemon (SQLite).
	Instances func(ctx context.Context) ([]jobview.Instance, error)
	// FolderHealth returns why each folder (by input) is degraded; "" or absent = healthy.
	FolderHealth func() map[string]string
	Metrics      prometheus.Gatherer // the daemon's instruments, served on /metrics
	// DiskFree reports the bytes free to this user and the size of the file system at path
	// (nil: the package's DiskFree; tests fake a full disk).
	DiskFree func(path string) (free, total uint64, err error)
	Logger   *slog.Logger
}

// Server serves the dashboard, the jobs API, metrics, health and Mosaic's webhooks.
type Server struct {
	opts      Options
	log       *slog.Logger
	tokenHash [32]byte // sha256 of the token; compared in constant time
	hasToken  bool
	csrf      string // per-process value the dashboard's forms must echo back
	hosts     hostPolicy
	hooks     *webhookSeen
	wakes     *wakeLimiter // the poller, woken at most once a second by webhooks
	webhooks  *prometheus.CounterVec
	metrics   prometheus.Gatherer
	srv       *http.Server
	ln        net.Listener

	refusedMu     sync.Mutex
	refusedWarned time.Time // last "webhook refused" warning
}

// New prepares a Server; Listen binds its address and Serve answers requests.
func New(opts Options) *Server {
	if opts.DiskFree == nil {
		opts.DiskFree = DiskFree
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts: opts, log: opts.Logger.With("component", "http"),
		hosts: newHostPolicy(opts), hooks: newWebhookSeen(4096),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_watch_webhooks_total",
			Help: "Webhook deliveries received, by flag and result (accepted, duplicate, " +
				"unknown_run, unauthorized, invalid, ignored, error).",
		}, []string{"flag", "result"}),
	}
	s.wakes = newWakeLimiter(webhookWakeEvery, func() { s.opts.Work.WakePoller() })
	own := prometheus.NewRegistry()
	own.MustRegister(s.webhooks)
	s.metrics = own
	if opts.Metrics != nil {
		s.metrics = prometheus.Gatherers{opts.Metrics, own}
	}
	if opts.Token != "" {
		s.hasToken = true
		s.tokenHash = sha256.Sum256([]byte(opts.Token))
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	s.csrf = base64.RawURLEncoding.EncodeToString(b[:])
	return s
}

// Listen binds Options.Listen. The daemon does it before it starts working, so a taken port is
// a start-up error rather than a surprise later.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("http listening", "addr", ln.Addr().String(), "token", s.hasToken,
		"webhook_secret", s.opts.WebhookSecret != "")
	return nil
}

// Serve answers requests on the bound address until ctx ends, then shuts down gracefully
// within a bounded time.
func (s *Server) Serve(ctx context.Context) {
	defer s.wakes.Close()
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
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
		_ = s.srv.Close()
	}
	<-errc
}

// Close releases a bound address that Serve never used.
func (s *Server) Close() error {
	if s.ln == nil {
		return nil
	}
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Handler routes every request; Listen serves it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// Open routes: health checks (the details need the token where one is configured) and
	// Mosaic's callbacks (which carry their own secret; without one the route is off).
	mux.HandleFunc("GET /healthz", s.handleHealth)
	if s.opts.WebhookSecret != "" {
		mux.HandleFunc("POST "+webhookPath, s.handleWebhook)
	}
	// Everything else needs the token when one is configured.
	mux.Handle("GET /metrics", s.auth(s.metricsHandler()))
	mux.Handle("GET /api/status", s.auth(http.HandlerFunc(s.handleStatus)))
	mux.Handle("GET /api/jobs", s.auth(http.HandlerFunc(s.handleJobs)))
	mux.Handle("GET /api/jobs/{id}", s.auth(http.HandlerFunc(s.handleJob)))
	mux.Handle("POST /api/jobs/{id}/retry", s.auth(http.HandlerFunc(s.handleRetry)))
	mux.Handle("GET /jobs/{id}/new-run", s.auth(http.HandlerFunc(s.handleNewRun)))
	mux.Handle("POST /api/folders/{name}/approve", s.auth(http.HandlerFunc(s.handleApprove)))
	mux.Handle("GET /{$}", s.auth(http.HandlerFunc(s.handleDashboard)))
	return securityHeaders(s.hostGuard(mux))
}

// folders returns the configured folders now.
func (s *Server) folders() []Folder {
	if s.opts.Live != nil {
		return s.opts.Live.Folders()
	}
	return s.opts.Folders
}

// names maps the folders' inputs to their names now.
func (s *Server) names() jobview.Names {
	names := jobview.Names{}
	for _, f := range s.folders() {
		if _, ok := names[f.Input]; !ok {
			names[f.Input] = f.Name
		}
	}
	return names
}

// auth requires http.token, when set, as "Authorization: Bearer TOKEN" (scripts, Prometheus) or
// as the password of HTTP Basic auth (so a browser can open the dashboard).
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hasToken || s.tokenOK(r) != noToken {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="mosaic-watch", charset="UTF-8"`)
		writeJSONError(w, http.StatusUnauthorized,
			"missing or wrong token (send Authorization: Bearer <http.token>)")
	})
}

// tokenKind is how a request proved it knows http.token.
type tokenKind int

const (
	noToken     tokenKind = iota // no credential, a wrong one, or no token configured
	bearerToken                  // a script: a browser never adds it on its own
	basicToken                   // a browser's login: it is sent along with cross-site requests too
)

// tokenOK reports how r carries http.token. With no token configured, nothing is a credential:
// a Bearer header then grants nothing.
func (s *Server) tokenOK(r *http.Request) tokenKind {
	if !s.hasToken {
		return noToken
	}
	var given string
	kind := bearerToken
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(rest)
	} else if _, pw, ok := r.BasicAuth(); ok {
		given, kind = pw, basicToken
	} else {
		return noToken
	}
	sum := sha256.Sum256([]byte(given))
	if subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) != 1 {
		return noToken
	}
	return kind
}

// securityHeaders keeps pages out of frames and caches and forbids loading anything from
// elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
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

// metricsHandler serves the daemon's instruments and the webhook counts.
func (s *Server) metricsHandler() http.Handler {
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}
	return promhttp.HandlerFor(s.metrics, opts)
}

package mosaictest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a running fake Mosaic. All state sits behind one mutex that is
// never held while request or response bodies are transferred.
type Server struct {
	opts    Options
	log     *slog.Logger
	base    string // normalised BasePath ("" or "/x/y")
	rootURL string // http://host:port
	ln      net.Listener
	srv     *http.Server
	handler http.Handler
	signKey []byte

	ctx    context.Context // cancelled by Close; stops webhooks, slow faults, the clock loop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once

	clockOffset atomic.Int64 // Options.ClockOffset, changed by SetClockOffset

	mu           sync.Mutex
	agents       map[string]*agent
	agentOrder   []string
	uploads      map[string]*upload // by video id
	uploadsByKey map[string]*upload // by storage object key
	runs         map[string]*run
	runOrder     []*run // creation order
	running      map[*run]struct{}
	renders      map[string]*render
	seq          int64
	faults       []*faultState
	rng          *mrand.Rand
	knobs        WebhookKnobs
	hooks        map[*run]*hookQueue
	stats        Stats
	uploadsNow   int
	closing      bool
	lateRuns     []*lateRun // FaultLateRun starts whose run has not appeared yet
	credits      int
}

// NewServer validates opts, registers opts.Agents, listens and serves at once.
func NewServer(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.APIKeys == nil {
		opts.APIKeys = []string{DefaultAPIKey}
	}
	for _, k := range opts.APIKeys {
		if !strings.HasPrefix(k, "mk_") {
			return nil, errors.New("mosaictest: every API key must start with mk_")
		}
	}
	if opts.UploadURLTTL <= 0 {
		opts.UploadURLTTL = time.Hour
	}
	if opts.DownloadURLTTL <= 0 {
		opts.DownloadURLTTL = 7 * 24 * time.Hour
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if opts.OutputSize <= 0 {
		opts.OutputSize = 64 << 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WebhookRetryDelay <= 0 {
		opts.WebhookRetryDelay = 100 * time.Millisecond
	}
	if opts.WebhookTimeout <= 0 {
		opts.WebhookTimeout = 30 * time.Second
	}
	if opts.Credits <= 0 {
		opts.Credits = 2500
	}
	base := strings.TrimRight(opts.BasePath, "/")
	if base != "" && !strings.HasPrefix(base, "/") {
		base = "/" + base
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("mosaictest: signing key: %w", err)
	}
	s := &Server{
		opts:         opts,
		log:          opts.Logger,
		base:         base,
		signKey:      key,
		agents:       map[string]*agent{},
		uploads:      map[string]*upload{},
		uploadsByKey: map[string]*upload{},
		runs:         map[string]*run{},
		running:      map[*run]struct{}{},
		renders:      map[string]*render{},
		rng:          mrand.New(mrand.NewPCG(uint64(opts.Seed), uint64(opts.Seed)^0x9e3779b97f4a7c15)),
		knobs:        opts.Webhooks,
		hooks:        map[*run]*hookQueue{},
		stats:        Stats{RunsByContent: map[RunKey]int{}, Requests: map[string]int{}},
		credits:      opts.Credits,
	}
	s.clockOffset.Store(int64(opts.ClockOffset))
	for _, spec := range opts.Agents {
		if _, err := s.addAgent(spec); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("mosaictest: listen %s: %w", opts.Addr, err)
	}
	s.ln = ln
	s.rootURL = "http://" + ln.Addr().String()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("mosaictest: serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.clockLoop()
	}()
	return s, nil
}

// URL is the base URL clients use, including BasePath, without a trailing slash.
func (s *Server) URL() string { return s.rootURL + s.base }

// RootURL is the scheme://host:port of the server (where storage and download routes live).
func (s *Server) RootURL() string { return s.rootURL }

// Handler is the server's full handler (API under BasePath, storage and download at the root).
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops serving, aborts webhook deliveries and waits for background goroutines.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.cancel()
		err = s.srv.Close()
		s.wg.Wait()
	})
	return err
}

// now is Mosaic's clock: Options.Now shifted by the clock offset.
func (s *Server) now() time.Time {
	return s.opts.Now().Add(time.Duration(s.clockOffset.Load())).UTC().Truncate(time.Microsecond)
}

// SetClockOffset changes how far Mosaic's clock is ahead of ours (see Options.ClockOffset).
func (s *Server) SetClockOffset(d time.Duration) { s.clockOffset.Store(int64(d)) }

// clockLoop finishes runs whose time has come even when nobody polls, so
// webhooks go out. Reads also advance runs lazily against Options.Now.
func (s *Server) clockLoop() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.advanceAllLocked()
			s.mu.Unlock()
		}
	}
}

// AgentIDs lists registered agents in registration order.
func (s *Server) AgentIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.agentOrder...)
}

// AddAgent registers an agent and returns its id. It panics on a duplicate id
// (a test bug).
func (s *Server) AddAgent(spec AgentSpec) string {
	id, err := s.addAgent(spec)
	if err != nil {
		panic(err)
	}
	return id
}

// Runs is a snapshot of every run, oldest first.
func (s *Server) Runs() []RunInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceAllLocked()
	out := make([]RunInfo, 0, len(s.runOrder))
	for _, r := range s.runOrder {
		out = append(out, RunInfo{
			ID: r.id, AgentID: r.agent.id, Status: r.status,
			VideoIDs:      append([]string(nil), r.videoIDs...),
			ContentSHA256: append([]string(nil), r.contentSHAs...),
			CreatedAt:     r.createdAt, CallbackURL: r.callbackURL, Foreign: r.foreign,
		})
	}
	return out
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceAllLocked()
	st := s.stats
	st.LateRunsPending = len(s.lateRuns)
	st.RunsByContent = make(map[RunKey]int, len(s.stats.RunsByContent))
	for k, v := range s.stats.RunsByContent {
		st.RunsByContent[k] = v
	}
	st.Requests = make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	return st
}

// SetWebhookKnobs changes webhook delivery behaviour for events queued from now on.
func (s *Server) SetWebhookKnobs(k WebhookKnobs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knobs = k
}

// SetLegacyWhoAmI switches the whoami shape at run time.
func (s *Server) SetLegacyWhoAmI(legacy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.LegacyWhoAmI = legacy
}

// routes builds the mux. API routes live under BasePath; the fake storage,
// download and thumbnail hosts live at the root like separate GCS hosts.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, name Route, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" "+s.base+path, s.wrap(name, true, h))
	}
	api("GET /whoami", RouteWhoAmI, s.handleWhoAmI)
	api("GET /credits", RouteCredits, s.handleCredits)
	api("POST /uploads/video/get_upload_url", RouteGetUploadURL, s.handleGetUploadURL)
	api("POST /uploads/video/finalize_upload", RouteFinalize, s.handleFinalize)
	api("POST /videos/get_upload_url", RouteGetUploadURL, s.handleLegacyGetUploadURL)
	api("POST /videos/finalize_upload", RouteFinalize, s.handleLegacyFinalize)
	api("GET /agents", RouteListAgents, s.handleListAgents)
	api("GET /agent/{agent_id}", RouteGetAgent, s.handleGetAgent)
	api("POST /agent/{agent_id}/run", RouteRunAgent, s.handleRunAgent)
	api("GET /agent/{agent_id}/runs", RouteListRuns, s.handleListRuns)
	api("GET /agent_runs", RouteListRuns, s.handleListRuns)
	api("GET /agent_run/{run_id}", RouteGetRun, s.handleGetRun)
	api("GET /agent_run/{run_id}/nodes", RouteNodes, s.handleNodes)
	api("POST /agent_run/{run_id}/cancel", RouteCancel, s.handleCancel)
	api("POST /agent_run/{run_id}/resume", RouteResume, s.handleResume)

	mux.Handle("/storage/{bucket}", s.wrap(RouteStorage, false, s.handleStorage))
	mux.Handle("GET /download/{render_id}", s.wrap(RouteDownload, false, s.handleDownload))
	mux.Handle("GET /thumbnail/{render_id}", s.wrap(RouteDownload, false, s.handleThumbnail))
	mux.Handle("GET /source/{token}", s.wrap(RouteDownload, false, s.handleSource))
	mux.Handle("/", s.wrap(RouteUnknown, false, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "Not Found")
	}))
	return mux
}

// wrap adds fault injection, auth and request statistics around a handler.
func (s *Server) wrap(name Route, auth bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w}
		outcome, counted := "", false
		defer func() {
			if !counted {
				s.countRequest(r.Method, name, rec, outcome)
			}
		}()
		// dropConn counts the request before the client can notice the drop.
		dropConn := func(why string) {
			counted = true
			s.countRequest(r.Method, name, rec, why)
			hijackClose(w)
		}
		// Every answer is dated by Mosaic's clock, as clients measure it from there.
		w.Header().Set("Date", s.now().Format(http.TimeFormat))
		handle := func(w http.ResponseWriter) {
			if auth && !s.authorized(r) {
				writeError(w, http.StatusUnauthorized, "invalid_api_key", "Invalid or missing API key")
				return
			}
			h(w, r)
		}
		if name == RouteRunAgent && s.opts.RunStartHook != nil {
			s.opts.RunStartHook(r.PathValue("agent_id"))
		}
		f := s.pickFault(name)
		if f == nil {
			handle(rec)
			return
		}
		s.log.Debug("mosaictest: injecting fault", "route", name, "kind", f.Kind)
		switch f.Kind {
		case FaultStatus:
			st := f.Status
			if st == 0 {
				st = http.StatusServiceUnavailable
			}
			writeError(rec, st, errorCodeFor(st), "Injected fault")
		case FaultRateLimit:
			if f.RetryAfter > 0 {
				secs := int((f.RetryAfter + time.Second - 1) / time.Second)
				rec.Header().Set("Retry-After", fmt.Sprint(secs))
			}
			writeError(rec, http.StatusTooManyRequests, "rate_limit", "Too many requests")
		case FaultDrop:
			dropConn("drop")
		case FaultSlow:
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			select {
			case <-t.C:
				handle(rec)
			case <-r.Context().Done():
				outcome = "canceled"
			}
		case FaultLoseResponse:
			handle(&discardWriter{h: http.Header{}})
			// Drain what the handler left so the client sees a dropped
			// connection, not a reset while still sending.
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			dropConn("lost")
		case FaultLoseRequest:
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxJSONBody))
			dropConn("lost_request")
		case FaultLateRun:
			if auth && !s.authorized(r) {
				writeError(rec, http.StatusUnauthorized, "invalid_api_key", "Invalid or missing API key")
				return
			}
			s.handleRunAgentLate(rec, r, *f)
		case FaultNotUploaded:
			writeError(rec, http.StatusBadRequest, "validation_error", "File not uploaded")
		case FaultExpired:
			writeXMLError(rec, http.StatusForbidden, "ExpiredToken", "The provided token has expired.")
		default:
			handle(rec)
		}
	})
}

func (s *Server) countRequest(method string, name Route, rec *statusWriter, outcome string) {
	status := outcome
	class := ""
	if status == "" {
		code := rec.status
		if code == 0 {
			code = http.StatusOK
		}
		status = fmt.Sprint(code)
		class = fmt.Sprintf("%dxx", code/100)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := method + " " + string(name) + " "
	s.stats.Requests[prefix+status]++
	if class != "" {
		s.stats.Requests[prefix+class]++
	}
}

// RequestKeys returns the sorted keys of Stats().Requests (handy in failure messages).
func (s *Server) RequestKeys() []string {
	st := s.Stats()
	keys := make([]string, 0, len(st.Requests))
	for k := range st.Requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	key = strings.TrimSpace(key)
	if !strings.HasPrefix(key, "mk_") {
		return false
	}
	for _, k := range s.opts.APIKeys {
		if k == key {
			return true
		}
	}
	return false
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discardWriter swallows a response (FaultLoseResponse).
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// hijackClose drops the connection without writing a response.
func hijackClose(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 or a recorder: abort the handler, which resets the stream.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// errorCodeFor is the "error" code Mosaic uses with an HTTP status (Era B table).
func errorCodeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "validation_error"
	case http.StatusUnauthorized:
		return "invalid_api_key"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusRequestEntityTooLarge:
		return "file_too_large"
	case http.StatusUnprocessableEntity:
		return "parameter_out_of_range"
	case http.StatusTooManyRequests:
		return "rate_limit"
	}
	return "internal_server_error"
}

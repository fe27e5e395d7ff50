package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// webhookPayload is the part of a Mosaic callback we read. Nothing in it is trusted: a finish
// notice only makes the poller fetch GET /agent_run/{id} now.
type webhookPayload struct {
	Flag       string `json:"flag"`
	RunID      string `json:"run_id"`
	AgentRunID string `json:"agent_run_id"` // oldest payload shape
	// Event is the oldest payload shape's "agent_run.completed" or "agent_run.failed".
	Event string `json:"event"`
}

// webhookPath is Mosaic's callback route; it is served only when webhook.secret is set.
const webhookPath = "/webhooks/mosaic"

// handleWebhook answers at once; the status fetch happens on the poller. Only a signed
// RUN_FINISHED for a run one of our jobs owns wakes it, and wake-ups are rate limited, so forged
// or replayed deliveries cannot multiply the calls to Mosaic.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	if !constantEqual(r.Header.Get("X-Mosaic-Signature"), s.opts.WebhookSecret) {
		s.webhooks.WithLabelValues("", "unauthorized").Inc()
		s.warnRefused(r)
		writeJSONError(w, http.StatusUnauthorized, "bad signature")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, webhookMaxBody)
	var p webhookPayload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		code := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			code = http.StatusRequestEntityTooLarge
		}
		s.webhooks.WithLabelValues("", "invalid").Inc()
		writeJSONError(w, code, "unreadable webhook body")
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	flag, runID := p.Flag, p.RunID
	if runID == "" {
		runID = p.AgentRunID
	}
	switch {
	case flag == "" && (p.Event == "agent_run.completed" || p.Event == "agent_run.failed"):
		flag = "RUN_FINISHED"
	case flag == "":
		flag = "unknown"
	}
	result := "accepted"
	switch flag {
	case "RUN_FINISHED":
		// Idempotent by run id: the first notice for one of our runs wakes the poller;
		// duplicates, and starts or progress arriving after the finish, change nothing.
		var ours bool
		var err error
		if runID != "" {
			ours, err = s.opts.Jobs.RunIDTaken(r.Context(), runID)
		}
		switch {
		case runID == "":
			result = "invalid"
		case err != nil:
			// Mosaic delivers again after a failed answer; the poller follows the run meanwhile.
			s.webhooks.WithLabelValues(flag, "error").Inc()
			s.log.Warn("webhook: cannot look up the run", "err", err)
			writeJSONError(w, http.StatusServiceUnavailable, "cannot look up the run; try again")
			return
		case !ours:
			// Not one of our runs (or its start is still being recorded: the poller finds it).
			result = "unknown_run"
		case s.hooks.finish(runID):
			s.wakes.Wake()
			s.log.Debug("webhook: run finished; fetching its status now", "run", runID)
		default:
			result = "duplicate"
		}
	case "RUN_STARTED", "RUN_PROGRESS", "TEST":
		// The poller follows running runs anyway; nothing to do.
	default:
		result = "ignored"
		flag = "other"
	}
	s.webhooks.WithLabelValues(flag, result).Inc()
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
}

// warnRefused logs a refused delivery as a warning at most once a minute (a wrong
// webhook.secret shows at once; a flood of forgeries does not flood the log), else at debug.
func (s *Server) warnRefused(r *http.Request) {
	s.refusedMu.Lock()
	now := time.Now()
	warn := now.Sub(s.refusedWarned) >= time.Minute
	if warn {
		s.refusedWarned = now
	}
	s.refusedMu.Unlock()
	level := slog.LevelDebug
	if warn {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "webhook refused: wrong or missing X-Mosaic-Signature "+
		"(check webhook.secret)", "remote", r.RemoteAddr)
}

// webhookSeen remembers the most recent finished run ids (bounded), so duplicate deliveries do
// not wake the poller again.
type webhookSeen struct {
	mu    sync.Mutex
	max   int
	set   map[string]struct{}
	order []string
}

func newWebhookSeen(max int) *webhookSeen {
	return &webhookSeen{max: max, set: make(map[string]struct{})}
}

// finish records runID and reports whether it is new.
func (w *webhookSeen) finish(runID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.set[runID]; ok {
		return false
	}
	if len(w.order) >= w.max {
		delete(w.set, w.order[0])
		w.order = w.order[1:]
	}
	w.set[runID] = struct{}{}
	w.order = append(w.order, runID)
	return true
}

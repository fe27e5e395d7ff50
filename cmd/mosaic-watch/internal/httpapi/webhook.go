package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
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

// handleWebhook answers at once; the status fetch happens on the poller.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	secret := s.opts.WebhookSecret
	if secret != "" && !constantEqual(r.Header.Get("X-Mosaic-Signature"), secret) {
		s.webhooks.WithLabelValues("", "unauthorized").Inc()
		s.log.Warn("webhook refused: wrong or missing X-Mosaic-Signature", "remote", r.RemoteAddr)
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
		// Idempotent by run id: the first notice wakes the poller; duplicates, and starts or
		// progress arriving after the finish, change nothing.
		var known bool
		var err error
		if runID != "" {
			known, err = s.opts.Jobs.RunIDTaken(r.Context(), runID)
		}
		switch {
		case runID == "":
			result = "invalid"
		case err != nil || !known:
			// Not (yet) one of ours: maybe the run start's answer is still being recorded.
			// Waking is harmless; not remembering it lets a redelivery wake again.
			s.opts.Work.WakePoller()
			result = "unknown_run"
		case s.hooks.finish(runID):
			s.opts.Work.WakePoller()
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

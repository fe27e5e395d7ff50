package mosaic

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Run statuses (newest API). Older servers only know running/completed/failed.
const (
	StatusRunning         = "running"
	StatusCompleted       = "completed"
	StatusPartialComplete = "partial_complete"
	StatusFailed          = "failed"
	StatusCancelled       = "cancelled"
)

// RunError is the per-node error list of a run.
type RunError struct {
	OriginalNodeID string
	Messages       []string
}

// RunInput is one input video of a run.
type RunInput struct{ VideoID, VideoURL, ThumbnailURL string }

// Output is one rendered result. VideoURL is a signed URL (secret query); CompletedAt may be zero.
type Output struct {
	ID, VideoURL, ThumbnailURL, PremiereURL, OriginalNodeID string
	CompletedAt                                             time.Time
}

// Run is the state of an agent run.
type Run struct {
	ID, AgentID, Status, StatusMessage string // ID from "run_id", else the id the caller asked for
	NeedsCredits                       bool   // accepts needs_credits and needsCredits
	Errors                             []RunError
	NodeStatusCounts                   map[string]int
	StartedAt, UpdatedAt               time.Time
	Inputs                             []RunInput
	Outputs                            []Output
	// TriggeredBy is the run's triggered_by object as compact JSON, e.g. {"type":"dashboard"},
	// or "" when it is null or absent. Run listings set it for runs started by a trigger or
	// from the dashboard; GET /agent_run/{id} does not report it.
	TriggeredBy string
}

// StartedByTrigger reports a run started by a trigger or from the dashboard (triggered_by set),
// never by an API client. Only meaningful for runs from ListRuns.
func (r *Run) StartedByTrigger() bool { return r.TriggeredBy != "" }

// Terminal reports whether the run will not change any more: completed, partial_complete, failed or
// cancelled. Unknown statuses are not terminal (the client logs each unknown status once).
func (r *Run) Terminal() bool {
	if r == nil {
		return false
	}
	return isTerminalStatus(r.Status)
}

func isTerminalStatus(s string) bool {
	switch s {
	case StatusCompleted, StatusPartialComplete, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

func isKnownStatus(s string) bool { return s == StatusRunning || isTerminalStatus(s) }

// normalizeStatus lower-cases and maps the American spelling, so callers compare with the constants.
func normalizeStatus(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "canceled" {
		return StatusCancelled
	}
	return s
}

// noteStatus warns once per client about a status string this client does not know.
func (c *Client) noteStatus(runID, status string) {
	if isKnownStatus(status) {
		return
	}
	c.statusMu.Lock()
	seen := c.seenStatus[status]
	c.seenStatus[status] = true
	c.statusMu.Unlock()
	if !seen {
		c.log.Warn("mosaic: unknown run status; treating it as not terminal", "status", status, "run_id", runID)
	}
}

type runErrorJSON struct {
	OriginalNodeID flexString  `json:"original_node_id"`
	Messages       flexStrings `json:"messages"`
	Message        flexStrings `json:"message"`
}

// UnmarshalJSON also accepts a bare string as an error entry.
func (e *runErrorJSON) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*e = runErrorJSON{Messages: flexStrings{s}}
		return nil
	}
	type plain runErrorJSON
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		*e = runErrorJSON{}
		return nil
	}
	*e = runErrorJSON(p)
	return nil
}

type runJSON struct {
	RunID            flexString     `json:"run_id"`
	ID               flexString     `json:"id"`
	AgentID          flexString     `json:"agent_id"`
	Status           string         `json:"status"`
	StatusMessage    *string        `json:"status_message"`
	NeedsCredits     *bool          `json:"needs_credits"`
	NeedsCreditsAlt  *bool          `json:"needsCredits"`
	Errors           []runErrorJSON `json:"errors"`
	NodeStatusCounts map[string]any `json:"node_status_counts"`
	StartedAt        flexTime       `json:"started_at"`
	CreatedAt        flexTime       `json:"created_at"`
	UpdatedAt        flexTime       `json:"updated_at"`
	Inputs           []struct {
		VideoID      flexString `json:"video_id"`
		VideoURL     string     `json:"video_url"`
		ThumbnailURL string     `json:"thumbnail_url"`
	} `json:"inputs"`
	TriggeredBy json.RawMessage `json:"triggered_by"`
	Outputs     []struct {
		ID             flexString `json:"id"`
		RenderID       flexString `json:"render_id"`
		VideoURL       string     `json:"video_url"`
		ThumbnailURL   string     `json:"thumbnail_url"`
		PremiereURL    string     `json:"premiere_prproj_url"`
		OriginalNodeID flexString `json:"original_node_id"`
		CompletedAt    flexTime   `json:"completed_at"`
	} `json:"outputs"`
}

func (j *runJSON) toRun(fallbackID string) Run {
	r := Run{
		ID:        firstNonEmpty(string(j.RunID), string(j.ID), fallbackID),
		AgentID:   string(j.AgentID),
		Status:    normalizeStatus(j.Status),
		StartedAt: j.StartedAt.Time,
		UpdatedAt: j.UpdatedAt.Time,
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = j.CreatedAt.Time
	}
	if j.StatusMessage != nil {
		r.StatusMessage = *j.StatusMessage
	}
	if t := bytes.TrimSpace(j.TriggeredBy); len(t) > 0 && string(t) != "null" {
		var buf bytes.Buffer
		if json.Compact(&buf, t) == nil {
			r.TriggeredBy = buf.String()
		} else {
			r.TriggeredBy = "unreadable"
		}
	}
	switch {
	case j.NeedsCredits != nil:
		r.NeedsCredits = *j.NeedsCredits
	case j.NeedsCreditsAlt != nil:
		r.NeedsCredits = *j.NeedsCreditsAlt
	}
	for _, e := range j.Errors {
		msgs := append([]string(e.Messages), e.Message...)
		if e.OriginalNodeID == "" && len(msgs) == 0 {
			continue
		}
		r.Errors = append(r.Errors, RunError{OriginalNodeID: string(e.OriginalNodeID), Messages: msgs})
	}
	if len(j.NodeStatusCounts) > 0 {
		r.NodeStatusCounts = make(map[string]int, len(j.NodeStatusCounts))
		for k, v := range j.NodeStatusCounts {
			if f, ok := v.(float64); ok {
				r.NodeStatusCounts[k] = int(f)
			}
		}
	}
	for _, in := range j.Inputs {
		r.Inputs = append(r.Inputs, RunInput{VideoID: string(in.VideoID), VideoURL: in.VideoURL, ThumbnailURL: in.ThumbnailURL})
	}
	for _, o := range j.Outputs {
		r.Outputs = append(r.Outputs, Output{
			ID:             firstNonEmpty(string(o.ID), string(o.RenderID)),
			VideoURL:       o.VideoURL,
			ThumbnailURL:   o.ThumbnailURL,
			PremiereURL:    o.PremiereURL,
			OriginalNodeID: string(o.OriginalNodeID),
			CompletedAt:    o.CompletedAt.Time,
		})
	}
	return r
}

// GetRun fetches GET /agent_run/{run_id}.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	var j runJSON
	call := apiCall{op: "get run", method: http.MethodGet, url: c.endpoint(nil, "agent_run", runID), safe: true}
	if err := c.doJSON(ctx, call, &j); err != nil {
		return nil, err
	}
	r := j.toRun(runID)
	c.noteStatus(r.ID, r.Status)
	return &r, nil
}

// ResumeRun asks Mosaic to resume a failed or cancelled run (POST /agent_run/{run_id}/resume),
// e.g. one blocked for credits once credits were added. A run in another state gives 409
// (IsConflict). Single attempt.
func (c *Client) ResumeRun(ctx context.Context, runID string) error {
	call := apiCall{op: "resume run", method: http.MethodPost, url: c.endpoint(nil, "agent_run", runID, "resume")}
	return c.doJSON(ctx, call, nil)
}

// CancelRun asks Mosaic to cancel a running run (POST /agent_run/{run_id}/cancel). Single attempt.
func (c *Client) CancelRun(ctx context.Context, runID string) error {
	call := apiCall{op: "cancel run", method: http.MethodPost, url: c.endpoint(nil, "agent_run", runID, "cancel")}
	return c.doJSON(ctx, call, nil)
}

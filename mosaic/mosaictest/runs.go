package mosaictest

import (
	"fmt"
	"time"
)

const (
	statusRunning   = "running"
	statusCompleted = "completed"
	statusPartial   = "partial_complete"
	statusFailed    = "failed"
	statusCancelled = "cancelled"
)

// render is one planned output of a run.
type render struct {
	id    string
	run   *run
	index int
}

type runInput struct {
	videoID  string // uploaded video, or ""
	videoURL string // URL input (video_urls), or ""
	renderID string // chained input (node_render_ids), or ""
}

type run struct {
	id          string
	seq         int64
	agent       *agent
	videoIDs    []string
	contentSHAs []string
	inputHash   string // SHA-256 hex that output bytes derive from
	inputs      []runInput
	callbackURL string

	createdAt  time.Time
	startedAt  time.Time // start of the current attempt (creation or resume)
	updatedAt  time.Time
	finishedAt time.Time
	duration   time.Duration
	outcome    Outcome // how the current attempt will end
	endedAs    Outcome // how it ended (terminal statuses except cancelled)
	status     string
	renders    []string // planned render ids
}

func statusFor(o Outcome) string {
	switch o {
	case OutcomePartial:
		return statusPartial
	case OutcomeFailed, OutcomeNeedsCredits:
		return statusFailed
	}
	return statusCompleted
}

func terminal(status string) bool { return status != statusRunning }

// plannedOutputs is how many renders a run of a plans (partial: the last fails).
func plannedOutputs(a *agent) int {
	if a.outcome == OutcomePartial {
		return max(a.outputs, 2)
	}
	return a.outputs
}

// deliveredOutputs is how many renders a run in its current state shows.
func (r *run) deliveredOutputs() int {
	switch {
	case r.status == statusCompleted:
		return len(r.renders)
	case r.status == statusPartial:
		return len(r.renders) - 1
	}
	return 0
}

func (r *run) needsCredits() bool {
	return r.status == statusFailed && r.endedAs == OutcomeNeedsCredits
}

// advanceLocked finishes r if its time has come on the server clock.
func (s *Server) advanceLocked(r *run, now time.Time) {
	if r.status != statusRunning || s.opts.ManualRuns {
		return
	}
	if end := r.startedAt.Add(r.duration); !now.Before(end) {
		s.finishLocked(r, r.outcome, end)
	}
}

func (s *Server) advanceAllLocked() {
	if len(s.running) == 0 || s.opts.ManualRuns {
		return
	}
	now := s.now()
	for r := range s.running {
		s.advanceLocked(r, now)
	}
}

func (s *Server) finishLocked(r *run, o Outcome, at time.Time) {
	r.status = statusFor(o)
	r.endedAs = o
	r.updatedAt = at
	r.finishedAt = at
	delete(s.running, r)
	s.queueWebhookLocked(r, "RUN_FINISHED")
}

// FinishRun ends a running run now with outcome o ("" => the agent's outcome).
func (s *Server) FinishRun(runID string, o Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runs[runID]
	if r == nil {
		return fmt.Errorf("mosaictest: run %s not found", runID)
	}
	s.advanceLocked(r, s.now())
	if r.status != statusRunning {
		return fmt.Errorf("mosaictest: run %s is %s, not running", runID, r.status)
	}
	if o == "" {
		o = r.outcome
	}
	switch o {
	case OutcomeCompleted, OutcomePartial, OutcomeFailed, OutcomeNeedsCredits:
	default:
		return fmt.Errorf("mosaictest: unknown outcome %q", o)
	}
	if o == OutcomePartial && len(r.renders) < 2 {
		// Partial needs one delivered and one failed render.
		r.renders = append(r.renders, s.newRenderLocked(r, len(r.renders)))
	}
	s.finishLocked(r, o, s.now())
	return nil
}

func (s *Server) newRenderLocked(r *run, i int) string {
	id := newUUID()
	s.renders[id] = &render{id: id, run: r, index: i}
	return id
}

// createRunLocked records a validated run request.
func (s *Server) createRunLocked(a *agent, req *runRequest) *run {
	now := s.now()
	s.seq++
	r := &run{
		id: newUUID(), seq: s.seq, agent: a, callbackURL: req.callbackURL,
		createdAt: now, startedAt: now, updatedAt: now,
		outcome: a.outcome, status: statusRunning,
		videoIDs: req.videoIDs, inputs: req.inputs,
	}
	r.duration = s.opts.RunDuration
	if a.duration != nil {
		r.duration = *a.duration
	}
	for _, vid := range r.videoIDs {
		r.contentSHAs = append(r.contentSHAs, s.uploads[vid].sha256)
	}
	if len(r.contentSHAs) > 0 {
		r.inputHash = r.contentSHAs[0]
	} else {
		r.inputHash = sha256Hex(req.firstSource)
	}
	for i := range plannedOutputs(a) {
		r.renders = append(r.renders, s.newRenderLocked(r, i))
	}
	s.runs[r.id] = r
	s.runOrder = append(s.runOrder, r)
	s.running[r] = struct{}{}
	s.stats.RunsCreated++
	s.stats.RunsByContent[RunKey{ContentSHA256: r.inputHash, AgentID: a.id}]++
	s.queueWebhookLocked(r, "RUN_STARTED")
	return r
}

// nodeView is one runtime node of a run.
type nodeView struct {
	original, status, message string
	errors                    []string
	needsCredits              bool
}

// nodesLocked derives node states from the run state.
func (r *run) nodesLocked() []nodeView {
	a := r.agent
	out := make([]nodeView, len(a.nodes))
	last := len(a.nodes) - 1
	for i, id := range a.nodes {
		nv := nodeView{original: id, status: statusCompleted, errors: []string{}}
		if i == last || i > 0 {
			switch r.status {
			case statusRunning:
				nv.status = "running"
			case statusCancelled:
				nv.status = statusCancelled
			}
		}
		if i == last {
			switch {
			case r.status == statusPartial:
				nv.status = statusPartial
				nv.message = fmt.Sprintf("%d of %d renders failed", 1, len(r.renders))
				nv.errors = []string{r.failureMessage()}
			case r.needsCredits():
				nv.status = "blocked"
				nv.message = "Insufficient credits"
				nv.needsCredits = true
			case r.status == statusFailed:
				nv.status = statusFailed
				nv.message = "Render failed"
				nv.errors = []string{r.failureMessage()}
			}
		}
		out[i] = nv
	}
	return out
}

func (r *run) failureMessage() string {
	if r.status == statusPartial {
		return fmt.Sprintf("FFmpeg render failed: output %d could not be encoded (fake)", len(r.renders))
	}
	return "FFmpeg render failed: fake failure"
}

func (r *run) statusMessage() any {
	switch {
	case r.status == statusPartial:
		return fmt.Sprintf("%d of %d outputs failed", 1, len(r.renders))
	case r.needsCredits():
		return "Insufficient credits"
	case r.status == statusFailed:
		return "Agent run failed"
	case r.status == statusCancelled:
		return "Agent run cancelled"
	}
	return nil
}

func (r *run) errorsView() []any {
	out := []any{}
	if r.status == statusPartial || (r.status == statusFailed && !r.needsCredits()) {
		out = append(out, map[string]any{"original_node_id": r.agent.editNode(), "messages": []string{r.failureMessage()}})
	}
	return out
}

func (r *run) nodeCounts() map[string]int {
	c := map[string]int{"completed": 0, "in_progress": 0, "failed": 0}
	for _, n := range r.nodesLocked() {
		switch n.status {
		case statusCompleted, statusPartial:
			c["completed"]++
		case "running", "queued":
			c["in_progress"]++
		case statusFailed, "blocked":
			c["failed"]++
		}
	}
	return c
}

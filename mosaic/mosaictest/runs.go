package mosaictest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
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
	// token names the input in its signed source URL: opaque, so no run body
	// reveals the video id (Mosaic's do not).
	token string
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

	createdAt  time.Time // also its started_at
	attemptAt  time.Time // start of the current attempt (creation or resume)
	updatedAt  time.Time
	finishedAt time.Time
	duration   time.Duration
	outcome    Outcome // how the current attempt will end
	endedAs    Outcome // how it ended (terminal statuses except cancelled)
	status     string
	renders    []string // planned render ids

	foreign     bool           // StartForeignRun
	triggeredBy map[string]any // nil: started through the API
}

// lateRun is a FaultLateRun start whose run appears at "at" on the fake's clock.
type lateRun struct {
	agent *agent
	req   *runRequest
	at    time.Time
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
	if end := r.attemptAt.Add(r.duration); !now.Before(end) {
		s.finishLocked(r, r.outcome, end)
	}
}

func (s *Server) advanceAllLocked() {
	now := s.now()
	if len(s.lateRuns) > 0 {
		s.createLateRunsLocked(now)
	}
	if len(s.running) == 0 || s.opts.ManualRuns {
		return
	}
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

// createLateRunsLocked creates the FaultLateRun runs whose time has come.
func (s *Server) createLateRunsLocked(now time.Time) {
	left := s.lateRuns[:0]
	for _, lr := range s.lateRuns {
		if now.Before(lr.at) {
			left = append(left, lr)
			continue
		}
		s.createRunLocked(lr.agent, lr.req, now)
	}
	clear(s.lateRuns[len(left):])
	s.lateRuns = left
}

// createRunLocked records a validated run request, created at "at".
func (s *Server) createRunLocked(a *agent, req *runRequest, at time.Time) *run {
	s.seq++
	r := &run{
		id: newUUID(), seq: s.seq, agent: a, callbackURL: req.callbackURL,
		createdAt: at, attemptAt: at, updatedAt: at,
		outcome: a.outcome, status: statusRunning,
		videoIDs: req.videoIDs, inputs: req.inputs,
	}
	for i := range r.inputs {
		r.inputs[i].token = newUUID()
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
	s.insertRunLocked(r)
	s.credits--
	s.stats.RunsCreated++
	s.stats.RunsByContent[RunKey{ContentSHA256: r.inputHash, AgentID: a.id}]++
	s.queueWebhookLocked(r, "RUN_STARTED")
	return r
}

// insertRunLocked records a new running run. runOrder stays sorted by (created
// at, seq), the order listings page through: a back-dated run, or one created
// after the clock offset changed, goes where its time puts it.
func (s *Server) insertRunLocked(r *run) {
	s.runs[r.id] = r
	i, _ := slices.BinarySearchFunc(s.runOrder, r, compareRuns)
	s.runOrder = slices.Insert(s.runOrder, i, r)
	s.running[r] = struct{}{}
}

func compareRuns(x, y *run) int {
	if c := x.createdAt.Compare(y.createdAt); c != 0 {
		return c
	}
	return cmp.Compare(x.seq, y.seq)
}

// StartForeignRun creates a run of agentID that this client did not start: a
// colleague's dashboard run (TriggeredBy {"type": "dashboard"}), a trigger's, or
// another program's API run (TriggeredBy nil), optionally back-dated. It is listed
// like any run but not counted in Stats.RunsCreated or RunsByContent.
func (s *Server) StartForeignRun(agentID string, f ForeignRun) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[agentID]
	if a == nil {
		return "", fmt.Errorf("mosaictest: agent %s not found", agentID)
	}
	content := f.Content
	if content == nil {
		content = []byte("foreign run " + newUUID())
	}
	at := s.now().Add(-f.BackDate)
	s.seq++
	r := &run{
		id: newUUID(), seq: s.seq, agent: a,
		createdAt: at, attemptAt: at, updatedAt: at,
		outcome: a.outcome, status: statusRunning,
		inputs:  []runInput{{videoURL: "https://storage.example/colleague.mp4", token: newUUID()}},
		foreign: true, triggeredBy: f.TriggeredBy,
	}
	r.duration = s.opts.RunDuration
	if a.duration != nil {
		r.duration = *a.duration
	}
	sum := sha256.Sum256(content)
	r.inputHash = hex.EncodeToString(sum[:])
	for i := range plannedOutputs(a) {
		r.renders = append(r.renders, s.newRenderLocked(r, i))
	}
	s.insertRunLocked(r)
	s.credits--
	s.stats.ForeignRuns++
	return r.id, nil
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

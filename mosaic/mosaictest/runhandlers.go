package mosaictest

import (
	"errors"
	"net/http"
	"time"
)

func (s *Server) handleRunAgent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a := s.agents[r.PathValue("agent_id")]
	strict := s.opts.StrictRunBody
	s.mu.Unlock()
	if a == nil {
		writeError(w, http.StatusNotFound, "not_found", "Agent not found")
		return
	}
	body, err := readRunBody(r, strict) // outside the lock: reads the network
	if err != nil {
		writeRunError(w, err)
		return
	}
	s.mu.Lock()
	req, err := s.validateRunLocked(a, body)
	var id string
	if err == nil {
		id = s.createRunLocked(a, req, s.now()).id
	}
	s.mu.Unlock()
	if err != nil {
		writeRunError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"run_id": id})
}

// handleRunAgentLate is FaultLateRun: a valid request is answered f.Status (a
// gateway that gave up) and its run appears f.Delay later on the fake's clock.
func (s *Server) handleRunAgentLate(w http.ResponseWriter, r *http.Request, f Fault) {
	s.mu.Lock()
	a := s.agents[r.PathValue("agent_id")]
	strict := s.opts.StrictRunBody
	s.mu.Unlock()
	if a == nil {
		writeError(w, http.StatusNotFound, "not_found", "Agent not found")
		return
	}
	body, err := readRunBody(r, strict)
	if err != nil {
		writeRunError(w, err)
		return
	}
	s.mu.Lock()
	req, err := s.validateRunLocked(a, body)
	if err == nil {
		s.lateRuns = append(s.lateRuns, &lateRun{agent: a, req: req, at: s.now().Add(f.Delay)})
	}
	s.mu.Unlock()
	if err != nil {
		writeRunError(w, err)
		return
	}
	status := f.Status
	if status == 0 {
		status = http.StatusGatewayTimeout
	}
	writeError(w, status, errorCodeFor(status), "Injected gateway timeout; the run will appear later")
}

func writeRunError(w http.ResponseWriter, err error) {
	var br badRequest
	if errors.As(err, &br) {
		writeError(w, http.StatusBadRequest, "validation_error", string(br))
		return
	}
	writeError(w, http.StatusInternalServerError, "internal_server_error", "Unexpected error")
}

// lookupRunLocked advances and returns the run named in the path, or writes 404.
func (s *Server) lookupRunLocked(w http.ResponseWriter, r *http.Request) *run {
	run := s.runs[r.PathValue("run_id")]
	if run == nil {
		writeError(w, http.StatusNotFound, "not_found", "Agent run not found")
		return nil
	}
	s.advanceLocked(run, s.now())
	return run
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	run := s.lookupRunLocked(w, r)
	var view map[string]any
	if run != nil {
		view = s.runViewLocked(run, s.requestRoot(r))
	}
	s.mu.Unlock()
	if view != nil {
		writeJSON(w, http.StatusOK, view)
	}
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	run := s.lookupRunLocked(w, r)
	var view map[string]any
	if run != nil {
		view = map[string]any{"run_id": run.id, "nodes": s.nodesViewLocked(run)}
	}
	s.mu.Unlock()
	if view != nil {
		writeJSON(w, http.StatusOK, view)
	}
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run := s.lookupRunLocked(w, r)
	if run == nil {
		return
	}
	if terminal(run.status) {
		writeDetail(w, http.StatusConflict, "Agent run is already "+run.status+" and cannot be cancelled")
		return
	}
	pending := 0
	for _, n := range run.nodesLocked() {
		if n.status != statusCompleted {
			pending++
		}
	}
	run.status = statusCancelled
	run.updatedAt = s.now()
	delete(s.running, run)
	s.stats.Cancels++
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true, "run_id": run.id, "tasks_cancelled": pending, "nodes_reset": pending,
		"message": "Agent run cancelled successfully",
	})
}

// handleResume restarts a failed or cancelled run. A needs-credits run
// resumes to completion (credits were topped up); others end as their agent does.
func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run := s.lookupRunLocked(w, r)
	if run == nil {
		return
	}
	if run.status != statusFailed && run.status != statusCancelled {
		writeDetail(w, http.StatusConflict, "Agent run can only be resumed when failed or cancelled (status: "+run.status+")")
		return
	}
	requeued := 0
	for _, n := range run.nodesLocked() {
		if n.status != statusCompleted {
			requeued++
		}
	}
	now := s.now()
	run.status = statusRunning
	run.outcome = run.agent.outcome
	if run.outcome == OutcomeNeedsCredits {
		run.outcome = OutcomeCompleted
	}
	run.endedAs = ""
	run.attemptAt, run.updatedAt = now, now
	run.finishedAt = time.Time{}
	s.running[run] = struct{}{}
	s.stats.Resumes++
	// requeued_nodes is a count (newest docs), not a list.
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true, "run_id": run.id, "agent_state_id": newUUID(),
		"nodes_queued": requeued, "nodes_considered": len(run.agent.nodes), "requeued_nodes": requeued,
		"requeued_node_tasks_detached": 0, "requeued_node_active_tasks_cancelled": 0, "requeued_node_active_tasks_total": 0,
	})
}

// handleCredits serves GET /credits in the newest shape.
func (s *Server) handleCredits(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	balance := s.credits
	now := s.now()
	s.mu.Unlock()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	writeJSON(w, http.StatusOK, map[string]any{
		"organization_id": fakeOrgID, "balance": balance, "plan": "creator", "plan_id": "creator_monthly",
		"billing_cycle": map[string]any{"current_period_start": ts(start), "current_period_end": ts(start.AddDate(0, 1, 0))},
		"auto_topup":    map[string]any{"eligible": true, "enabled": false, "threshold": nil, "quantity": nil},
	})
}

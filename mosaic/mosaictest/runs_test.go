package mosaictest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunValidation(t *testing.T) {
	s := newFake(t, Options{ManualRuns: true})
	agentID := s.AddAgent(AgentSpec{Nodes: []string{"in-node", "edit-node"}})
	strictAgent := s.AddAgent(AgentSpec{})
	vid, _ := uploadContent(t, s, "content")
	notFinal := getUploadURL(t, s).videoID
	url := s.URL() + "/agent/" + agentID + "/run"
	for _, tc := range []struct {
		name   string
		body   any
		detail string
	}{
		{"not an object", []byte(`[1,2]`), "JSON object"},
		{"not JSON", []byte(`{"video_ids":`), "JSON object"},
		{"empty body", []byte(``), "JSON object"},
		{"no input", map[string]any{"callback_url": "http://127.0.0.1:1/x"}, "Provide video_inputs"},
		{"both shapes", map[string]any{"video_ids": []string{vid}, "video_inputs": []any{map[string]any{"agent_node_id": "in-node", "video_ids": []string{vid}}}}, "not both"},
		{"unknown video input node", map[string]any{"video_inputs": []any{map[string]any{"agent_node_id": "nope", "video_ids": []string{vid}}}}, "not a node"},
		{"video input without source", map[string]any{"video_inputs": []any{map[string]any{"agent_node_id": "in-node"}}}, "needs at least one"},
		{"bad update_params key", map[string]any{"video_ids": []string{vid}, "update_params": map[string]any{"nope": map[string]any{"a": 1}}}, "update_params key nope"},
		{"bad ignore_nodes", map[string]any{"video_ids": []string{vid}, "ignore_nodes": []string{"nope"}}, "ignore_nodes entry nope"},
		{"never uploaded id", map[string]any{"video_ids": []string{newUUID()}}, "not finalized"},
		{"not finalized id", map[string]any{"video_ids": []string{notFinal}}, "not finalized"},
		{"video_ids wrong type", map[string]any{"video_ids": "abc"}, "array of strings"},
		{"bad video url", map[string]any{"video_urls": []string{"ftp://x"}}, "http(s)"},
		{"bad callback", map[string]any{"video_ids": []string{vid}, "callback_url": "not a url"}, "callback_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := call(t, "POST", url, tc.body)
			if st != 400 {
				t.Fatalf("status %d %v", st, m)
			}
			wantErrBody(t, m, "validation_error", tc.detail)
		})
	}
	st, m := call(t, "POST", s.URL()+"/agent/"+newUUID()+"/run", map[string]any{"video_ids": []string{vid}})
	if st != 404 || m["error"] != "not_found" || m["detail"] != "Agent not found" {
		t.Fatalf("unknown agent: %d %v", st, m)
	}
	// Unknown fields: accepted by default, rejected with StrictRunBody.
	extra := map[string]any{"video_ids": []string{vid}, "surprise": true}
	startRun(t, s, strictAgent, extra)
	s.mu.Lock()
	s.opts.StrictRunBody = true
	s.mu.Unlock()
	if st, m := call(t, "POST", s.URL()+"/agent/"+strictAgent+"/run", extra); st != 400 {
		t.Fatalf("strict: %d %v", st, m)
	} else {
		wantErrBody(t, m, "validation_error", "Unknown field: surprise")
	}
	// Every accepted shape creates a new run (no idempotency).
	ok := []any{
		map[string]any{"video_ids": []string{vid}},
		map[string]any{"video_ids": []string{vid}},
		map[string]any{"video_inputs": []any{map[string]any{"agent_node_id": "in-node", "video_ids": []string{vid}, "input_clip_start_ms": 0}},
			"update_params": map[string]any{"edit-node": map[string]any{"style": "x"}}, "ignore_nodes": []string{"edit-node"}},
		map[string]any{"video_urls": []string{"https://www.youtube.com/watch?v=x"}},
	}
	ids := map[string]bool{}
	for _, b := range ok {
		ids[startRun(t, s, agentID, b)] = true
	}
	if len(ids) != len(ok) {
		t.Fatalf("run ids not unique: %v", ids)
	}
}

func TestRunLifecycleWithClock(t *testing.T) {
	clock := newClock()
	s := newFake(t, Options{Now: clock.Now, RunDuration: time.Minute, OutputSize: 1000})
	done := s.AddAgent(AgentSpec{Outputs: 3})
	vid, sum := uploadContent(t, s, "lifecycle")
	runID := startRun(t, s, done, map[string]any{"video_ids": []string{vid}})

	r := getRun(t, s, runID)
	if r["status"] != "running" || len(r["outputs"].([]any)) != 0 || r["agent_id"] != done || r["status_message"] != nil {
		t.Fatalf("fresh run: %v", r)
	}
	if in := r["inputs"].([]any); len(in) != 1 || !strings.Contains(str(in[0].(map[string]any)["video_url"]), "/source/") ||
		strings.Contains(fmt.Sprint(in), vid) || len(in[0].(map[string]any)) != 2 {
		t.Fatalf("inputs must be {video_url, thumbnail_url} without the video id: %v", r["inputs"])
	}
	clock.Advance(59 * time.Second)
	if getRun(t, s, runID)["status"] != "running" {
		t.Fatal("finished early")
	}
	clock.Advance(time.Second)
	r = getRun(t, s, runID)
	outs := r["outputs"].([]any)
	if r["status"] != "completed" || len(outs) != 3 || r["needs_credits"] != false || len(r["errors"].([]any)) != 0 {
		t.Fatalf("completed run: %v", r)
	}
	o := outs[2].(map[string]any)
	if o["premiere_prproj_url"] != nil || o["id"] == "" || o["completed_at"] == nil || o["original_node_id"] == nil {
		t.Fatalf("output shape: %v", o)
	}
	st, body := callRaw(t, "GET", o["video_url"].(string), "", nil)
	if st != 200 || string(body) != string(OutputBytes(done, sum, 2, 1000)) {
		t.Fatalf("download: %d %q", st, body[:min(len(body), 80)])
	}
	counts := r["node_status_counts"].(map[string]any)
	if counts["completed"] != 2.0 || counts["in_progress"] != 0.0 {
		t.Fatalf("counts %v", counts)
	}
	// Cancel and resume rules.
	if st, m := call(t, "POST", s.URL()+"/agent_run/"+runID+"/cancel", nil); st != 409 || m["detail"] == nil {
		t.Fatalf("cancel terminal: %d %v", st, m)
	}
	if st, m := call(t, "POST", s.URL()+"/agent_run/"+runID+"/resume", nil); st != 409 || m["detail"] == nil || m["error"] != nil {
		t.Fatalf("resume completed: %d %v", st, m)
	}
	run2 := startRun(t, s, done, map[string]any{"video_ids": []string{vid}})
	if st, m := call(t, "POST", s.URL()+"/agent_run/"+run2+"/resume", nil); st != 409 {
		t.Fatalf("resume running: %d %v", st, m)
	}
	st, m := call(t, "POST", s.URL()+"/agent_run/"+run2+"/cancel", nil)
	if st != 200 || m["success"] != true || m["run_id"] != run2 || m["message"] != "Agent run cancelled successfully" || m["tasks_cancelled"] == nil || m["nodes_reset"] == nil {
		t.Fatalf("cancel: %d %v", st, m)
	}
	clock.Advance(time.Hour)
	if r := getRun(t, s, run2); r["status"] != "cancelled" || len(r["outputs"].([]any)) != 0 {
		t.Fatalf("cancelled run: %v", r)
	}
	if st, m := call(t, "POST", s.URL()+"/agent_run/"+run2+"/resume", nil); st != 200 || m["success"] != true || m["run_id"] != run2 {
		t.Fatalf("resume cancelled: %d %v", st, m)
	}
	if getRun(t, s, run2)["status"] != "running" {
		t.Fatal("resumed run not running")
	}
	clock.Advance(time.Minute)
	if getRun(t, s, run2)["status"] != "completed" {
		t.Fatal("resumed run did not complete")
	}
	if st, _ := call(t, "GET", s.URL()+"/agent_run/"+newUUID(), nil); st != 404 {
		t.Fatalf("unknown run: %d", st)
	}
	for _, p := range []string{"/cancel", "/resume"} {
		if st, _ := call(t, "POST", s.URL()+"/agent_run/"+newUUID()+p, nil); st != 404 {
			t.Fatalf("unknown run %s: %d", p, st)
		}
	}
}

func TestRunOutcomes(t *testing.T) {
	clock := newClock()
	s := newFake(t, Options{Now: clock.Now}) // RunDuration 0: terminal at the first GET
	vid, _ := uploadContent(t, s, "outcomes")
	for _, tc := range []struct {
		spec                AgentSpec
		status              string
		outputs, errs       int
		needsCredits        bool
		message, nodeStatus string
	}{
		{AgentSpec{}, "completed", 1, 0, false, "", "completed"},
		{AgentSpec{Outputs: 3, Outcome: OutcomePartial}, "partial_complete", 2, 1, false, "1 of 3 outputs failed", "partial_complete"},
		{AgentSpec{Outcome: OutcomePartial}, "partial_complete", 1, 1, false, "1 of 2 outputs failed", "partial_complete"},
		{AgentSpec{Outcome: OutcomeFailed}, "failed", 0, 1, false, "Agent run failed", "failed"},
		{AgentSpec{Outcome: OutcomeNeedsCredits}, "failed", 0, 0, true, "Insufficient credits", "blocked"},
	} {
		t.Run(string(tc.spec.Outcome)+tc.status, func(t *testing.T) {
			agentID := s.AddAgent(tc.spec)
			runID := startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}})
			r := getRun(t, s, runID)
			if r["status"] != tc.status || len(r["outputs"].([]any)) != tc.outputs || len(r["errors"].([]any)) != tc.errs ||
				r["needs_credits"] != tc.needsCredits || (tc.message != "" && r["status_message"] != tc.message) {
				t.Fatalf("run: %v", r)
			}
			if tc.errs > 0 {
				e := r["errors"].([]any)[0].(map[string]any)
				if e["original_node_id"] == nil || len(e["messages"].([]any)) == 0 {
					t.Fatalf("errors entry: %v", e)
				}
			}
			st, m := call(t, "GET", s.URL()+"/agent_run/"+runID+"/nodes", nil)
			nodes, _ := m["nodes"].([]any)
			if st != 200 || m["run_id"] != runID || len(nodes) != 2 {
				t.Fatalf("nodes: %d %v", st, m)
			}
			last := nodes[1].(map[string]any)
			if last["status"] != tc.nodeStatus || last["needs_credits"] != tc.needsCredits || last["agent_node_id"] == last["original_node_id"] {
				t.Fatalf("last node: %v", last)
			}
			if tc.needsCredits {
				// Credits topped up: resume completes the run.
				if st, m := call(t, "POST", s.URL()+"/agent_run/"+runID+"/resume", nil); st != 200 {
					t.Fatalf("resume: %d %v", st, m)
				}
				if r := getRun(t, s, runID); r["status"] != "completed" || r["needs_credits"] != false {
					t.Fatalf("after resume: %v", r)
				}
			}
		})
	}
}

func TestManualRunsAndFinishRun(t *testing.T) {
	s := newFake(t, Options{ManualRuns: true})
	agentID := s.AddAgent(AgentSpec{Outputs: 2})
	vid, sum := uploadContent(t, s, "manual")
	runID := startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}, "callback_url": "http://127.0.0.1:9/hook"})
	if getRun(t, s, runID)["status"] != "running" {
		t.Fatal("manual run not running")
	}
	runs := s.Runs()
	if len(runs) != 1 || runs[0].ID != runID || runs[0].AgentID != agentID || runs[0].Status != "running" ||
		runs[0].VideoIDs[0] != vid || runs[0].ContentSHA256[0] != sum || runs[0].CallbackURL != "http://127.0.0.1:9/hook" || runs[0].CreatedAt.IsZero() {
		t.Fatalf("Runs(): %+v", runs)
	}
	if err := s.FinishRun(runID, OutcomePartial); err != nil {
		t.Fatal(err)
	}
	if r := getRun(t, s, runID); r["status"] != "partial_complete" || len(r["outputs"].([]any)) != 1 {
		t.Fatalf("after FinishRun: %v", r)
	}
	if err := s.FinishRun(runID, ""); err == nil {
		t.Fatal("FinishRun on a terminal run succeeded")
	}
	if err := s.FinishRun("nope", ""); err == nil {
		t.Fatal("FinishRun on an unknown run succeeded")
	}
	run2 := startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}})
	if err := s.FinishRun(run2, ""); err != nil {
		t.Fatal(err)
	}
	if r := getRun(t, s, run2); r["status"] != "completed" || len(r["outputs"].([]any)) != 2 {
		t.Fatalf("default outcome: %v", r)
	}
}

func TestAgentEndpoints(t *testing.T) {
	s := newFake(t, Options{})
	id := s.AddAgent(AgentSpec{Name: "Cutter", Nodes: []string{"n1", "n2", "n3"}})
	st, m := call(t, "GET", s.URL()+"/agent/"+id, nil)
	if st != 200 {
		t.Fatalf("get agent: %d", st)
	}
	a := m["agent"].(map[string]any)
	nodes := m["agent_nodes"].([]any)
	if a["id"] != id || a["name"] != "Cutter" || a["visibility"] == nil || a["created_at"] == nil || len(nodes) != 3 {
		t.Fatalf("agent: %v", m)
	}
	n := nodes[0].(map[string]any)
	if n["agent_node_id"] != "n1" || n["node_type"].(map[string]any)["node_type_name"] != "Video Input" || n["params_used"] == nil {
		t.Fatalf("node: %v", n)
	}
	if _, ok := m["connections"].([]any); !ok {
		t.Fatalf("connections: %v", m)
	}
	if st, m := call(t, "GET", s.URL()+"/agent/"+newUUID(), nil); st != 404 || m["error"] != "not_found" {
		t.Fatalf("unknown agent: %d %v", st, m)
	}
	st, m = call(t, "GET", s.URL()+"/agents", nil)
	if st != 200 || len(m["agents"].([]any)) != 1 || m["next_cursor"] != nil {
		t.Fatalf("list agents: %d %v", st, m)
	}
	if ids := s.AgentIDs(); len(ids) != 1 || ids[0] != id {
		t.Fatalf("AgentIDs %v", ids)
	}
	// Clients send Content-Type on GETs; it is ignored.
	req, _ := http.NewRequest("GET", s.URL()+"/agent/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+DefaultAPIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Workspace-Id", newUUID())
	resp, err := testHTTP.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET with headers: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestOlderRunShape(t *testing.T) {
	s := newFake(t, Options{OlderRunShape: true})
	agentID := s.AddAgent(AgentSpec{})
	vid, _ := uploadContent(t, s, "older")
	r := getRun(t, s, startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}}))
	for _, k := range []string{"errors", "needs_credits", "node_status_counts", "status_message"} {
		if _, ok := r[k]; ok {
			t.Fatalf("older shape has %s: %v", k, r)
		}
	}
	o := r["outputs"].([]any)[0].(map[string]any)
	if _, ok := o["id"]; ok || o["video_url"] == nil || r["status"] != "completed" {
		t.Fatalf("older output %v", o)
	}
}

func TestInjectedStatusUsesMosaicErrorCodes(t *testing.T) {
	s := newFake(t, Options{})
	s.InjectFault(RouteFinalize, Fault{Kind: FaultStatus, Status: 413, Count: 1})
	st, m := call(t, "POST", s.URL()+"/uploads/video/finalize_upload", map[string]string{"video_id": newUUID()})
	if st != 413 || m["error"] != "file_too_large" {
		t.Fatalf("%d %v", st, m)
	}
}

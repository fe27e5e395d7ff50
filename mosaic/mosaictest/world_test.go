package mosaictest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestDateHeaderFollowsTheClockOffset(t *testing.T) {
	clock := newClock()
	s := newFake(t, Options{Now: clock.Now, ClockOffset: -10 * time.Minute})
	resp, err := testHTTP.Get(s.URL() + "/whoami") // 401, still dated
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil || !got.Equal(clock.Now().Add(-10*time.Minute).Truncate(time.Second)) {
		t.Fatalf("Date %q (%v), want our clock minus 10 minutes", resp.Header.Get("Date"), err)
	}
	s.SetClockOffset(3 * time.Minute)
	agent := s.AddAgent(AgentSpec{})
	vid, _ := uploadContent(t, s, "offset")
	id := startRun(t, s, agent, map[string]any{"video_ids": []string{vid}})
	if r := getRun(t, s, id); r["started_at"] != ts(clock.Now().Add(3*time.Minute)) {
		t.Fatalf("started_at %v, want Mosaic's clock", r["started_at"])
	}
	// The list filters use Mosaic's clock too: a window in our time misses the run.
	from := url.Values{"from": {clock.Now().Add(time.Minute).Format(time.RFC3339)}}
	if _, m := call(t, "GET", s.URL()+"/agent/"+agent+"/runs?"+from.Encode(), nil); len(m["runs"].([]any)) != 1 {
		t.Fatalf("from in Mosaic time: %v", m)
	}
}

func TestAgentNodeShapes(t *testing.T) {
	s := newFake(t, Options{})
	single := s.AddAgent(AgentSpec{})
	multi := s.AddAgent(AgentSpec{VideoInputs: 2})
	gen := s.AddAgent(AgentSpec{GenerationOnly: true})
	inputs := func(id string) []string {
		_, m := call(t, "GET", s.URL()+"/agent/"+id, nil)
		var nodes []string
		for _, n := range m["agent_nodes"].([]any) {
			n := n.(map[string]any)
			if n["node_type"].(map[string]any)["node_type_id"] == VideoInputTypeID {
				nodes = append(nodes, n["agent_node_id"].(string))
			}
		}
		return nodes
	}
	if n := inputs(single); len(n) != 1 {
		t.Fatalf("single-input agent has %d Video Input nodes", len(n))
	}
	multiNodes := inputs(multi)
	if len(multiNodes) != 2 || len(inputs(gen)) != 0 {
		t.Fatalf("multi %v, generation-only %v", multiNodes, inputs(gen))
	}
	vid, _ := uploadContent(t, s, "shapes")
	cases := []struct {
		agent string
		body  map[string]any
		want  int
	}{
		{multi, map[string]any{"video_ids": []string{vid}}, 400},
		{multi, map[string]any{"video_inputs": []any{map[string]any{"agent_node_id": multiNodes[0], "video_ids": []string{vid}}}}, 400},
		{multi, map[string]any{"video_inputs": []any{
			map[string]any{"agent_node_id": multiNodes[0], "video_ids": []string{vid}},
			map[string]any{"agent_node_id": multiNodes[1], "video_ids": []string{vid}}}}, 200},
		{gen, map[string]any{"video_ids": []string{vid}}, 400},
		{gen, map[string]any{}, 200},
	}
	for i, c := range cases {
		if st, m := call(t, "POST", s.URL()+"/agent/"+c.agent+"/run", c.body); st != c.want {
			t.Errorf("case %d: %d %v, want %d", i, st, m, c.want)
		}
	}
}

func TestResumeCountsAndCredits(t *testing.T) {
	s := newFake(t, Options{Credits: 100})
	agent := s.AddAgent(AgentSpec{Outcome: OutcomeFailed})
	vid, _ := uploadContent(t, s, "resume")
	id := startRun(t, s, agent, map[string]any{"video_ids": []string{vid}})
	waitFor(t, "the run to fail", func() bool { return getRun(t, s, id)["status"] == "failed" })
	st, m := call(t, "POST", s.URL()+"/agent_run/"+id+"/resume", nil)
	if _, isNumber := m["requeued_nodes"].(float64); st != 200 || !isNumber {
		t.Fatalf("resume: %d %v; requeued_nodes must be a number", st, m)
	}
	st, m = call(t, "GET", s.URL()+"/credits", nil)
	if st != 200 || m["balance"] != 99.0 || m["auto_topup"] == nil {
		t.Fatalf("credits: %d %v", st, m)
	}
	if s.Stats().Resumes != 1 {
		t.Fatalf("resumes %d", s.Stats().Resumes)
	}
}

func TestForeignRuns(t *testing.T) {
	clock := newClock()
	s := newFake(t, Options{Now: clock.Now, ManualRuns: true})
	agent := s.AddAgent(AgentSpec{})
	dash, err := s.StartForeignRun(agent, ForeignRun{TriggeredBy: map[string]any{"type": "dashboard"}})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	api, _ := s.StartForeignRun(agent, ForeignRun{})
	old, _ := s.StartForeignRun(agent, ForeignRun{BackDate: 90 * time.Second})
	_, m := call(t, "GET", s.URL()+"/agent/"+agent+"/runs", nil)
	runs := m["runs"].([]any)
	if len(runs) != 3 {
		t.Fatalf("%d runs listed", len(runs))
	}
	byID := map[string]map[string]any{}
	var order []string
	for _, r := range runs {
		r := r.(map[string]any)
		byID[r["run_id"].(string)] = r
		order = append(order, r["run_id"].(string))
	}
	if byID[dash]["triggered_by"].(map[string]any)["type"] != "dashboard" || byID[api]["triggered_by"] != nil {
		t.Fatalf("triggered_by: %v / %v", byID[dash], byID[api])
	}
	if order[0] != api || order[1] != dash || order[2] != old {
		t.Fatalf("listing order %v, want newest first by start: %s %s %s", order, api, dash, old)
	}
	if byID[old]["started_at"] != ts(clock.Now().Add(-90*time.Second)) {
		t.Fatalf("back-dated started_at %v", byID[old]["started_at"])
	}
	// Paging across a back-dated insertion still sees every run once.
	var paged []string
	cursor := ""
	for range 5 {
		q := url.Values{"limit": {"1"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		_, m := call(t, "GET", s.URL()+"/agent/"+agent+"/runs?"+q.Encode(), nil)
		for _, r := range m["runs"].([]any) {
			paged = append(paged, r.(map[string]any)["run_id"].(string))
		}
		if m["next_cursor"] == nil {
			break
		}
		cursor = m["next_cursor"].(string)
	}
	if strings.Join(paged, ",") != strings.Join(order, ",") {
		t.Fatalf("paged %v, want %v", paged, order)
	}
	if st := s.Stats(); st.RunsCreated != 0 || st.ForeignRuns != 3 {
		t.Fatalf("stats: created %d foreign %d", st.RunsCreated, st.ForeignRuns)
	}
}

func TestLostRequestCreatesNoRun(t *testing.T) {
	s := newFake(t, Options{})
	agent := s.AddAgent(AgentSpec{})
	vid, _ := uploadContent(t, s, "lost request")
	s.InjectFault(RouteRunAgent, Fault{Kind: FaultLoseRequest, Count: 1})
	body, _ := json.Marshal(map[string]any{"video_ids": []string{vid}})
	req, _ := http.NewRequest("POST", s.URL()+"/agent/"+agent+"/run", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+DefaultAPIKey)
	if resp, err := testHTTP.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer %d; want a dropped connection", resp.StatusCode)
	}
	if st := s.Stats(); st.RunsCreated != 0 || st.Requests["POST run_agent lost_request"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLateRunAppearsAfterItsGatewayTimeout(t *testing.T) {
	clock := newClock()
	hooked := 0
	s := newFake(t, Options{Now: clock.Now, ManualRuns: true, RunStartHook: func(string) { hooked++ }})
	agent := s.AddAgent(AgentSpec{})
	vid, _ := uploadContent(t, s, "late")
	s.InjectFault(RouteRunAgent, Fault{Kind: FaultLateRun, Delay: 20 * time.Second, Count: 1})
	st, m := call(t, "POST", s.URL()+"/agent/"+agent+"/run", map[string]any{"video_ids": []string{vid}})
	if st != 504 {
		t.Fatalf("late start answered %d %v", st, m)
	}
	list := func() []any {
		_, m := call(t, "GET", s.URL()+"/agent/"+agent+"/runs", nil)
		return m["runs"].([]any)
	}
	clock.Advance(19 * time.Second)
	if n := len(list()); n != 0 || s.Stats().LateRunsPending != 1 {
		t.Fatalf("%d runs listed before the delay", n)
	}
	clock.Advance(time.Second)
	runs := list()
	if len(runs) != 1 || runs[0].(map[string]any)["started_at"] != ts(clock.Now()) {
		t.Fatalf("after the delay: %v", runs)
	}
	if st := s.Stats(); st.RunsCreated != 1 || st.LateRunsPending != 0 || hooked != 1 {
		t.Fatalf("stats %+v, hook called %d times", st, hooked)
	}
	// An invalid request is refused as usual, and creates nothing later.
	s.InjectFault(RouteRunAgent, Fault{Kind: FaultLateRun, Count: 1})
	if st, _ := call(t, "POST", s.URL()+"/agent/"+agent+"/run", map[string]any{}); st != 400 {
		t.Fatalf("invalid late start: %d", st)
	}
	if s.Stats().LateRunsPending != 0 {
		t.Fatal("an invalid request was scheduled")
	}
}

package mosaictest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestListRuns(t *testing.T) {
	clock := newClock()
	s := newFake(t, Options{Now: clock.Now, ManualRuns: true})
	a1 := s.AddAgent(AgentSpec{})
	a2 := s.AddAgent(AgentSpec{})
	vid, _ := uploadContent(t, s, "list")
	var ids []string
	start := clock.Now()
	for i := range 7 {
		ids = append(ids, startRun(t, s, a1, map[string]any{"video_ids": []string{vid}}))
		clock.Advance(time.Minute)
		if i == 2 {
			startRun(t, s, a2, map[string]any{"video_ids": []string{vid}})
		}
	}
	if err := s.FinishRun(ids[0], OutcomeFailed); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ids[1], ""); err != nil {
		t.Fatal(err)
	}

	list := func(path string, q url.Values) (int, map[string]any) {
		return call(t, "GET", s.URL()+path+"?"+q.Encode(), nil)
	}
	// Paging with cursors, newest first.
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {"3"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		st, m := list("/agent/"+a1+"/runs", q)
		if st != 200 {
			t.Fatalf("page %d: %d %v", pages, st, m)
		}
		for _, r := range m["runs"].([]any) {
			item := r.(map[string]any)
			got = append(got, item["run_id"].(string))
			// Exactly the documented fields: no needs_credits, no created_at.
			want := []string{"run_id", "agent_id", "status", "status_message", "started_at", "updated_at",
				"node_status_counts", "inputs", "outputs", "triggered_by"}
			if len(item) != len(want) {
				t.Fatalf("item has %d fields, want %v: %v", len(item), want, item)
			}
			for _, k := range want {
				if _, ok := item[k]; !ok {
					t.Fatalf("item lacks %s: %v", k, item)
				}
			}
			if item["triggered_by"] != nil {
				t.Fatalf("an API run has triggered_by %v", item["triggered_by"])
			}
			in := item["inputs"].([]any)[0].(map[string]any)
			if len(in) != 2 || in["video_url"] == nil || in["thumbnail_url"] == nil || strings.Contains(fmt.Sprint(in), vid) {
				t.Fatalf("item inputs must be {video_url, thumbnail_url} without the video id: %v", in)
			}
		}
		if m["next_cursor"] == nil {
			break
		}
		cursor = m["next_cursor"].(string)
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != 7 || got[0] != ids[6] || got[6] != ids[0] {
		t.Fatalf("paged ids %v, want newest first of %v", got, ids)
	}
	// Org-wide list with and without agent filter; default limit 25.
	if _, m := list("/agent_runs", nil); len(m["runs"].([]any)) != 8 || m["next_cursor"] != nil {
		t.Fatalf("agent_runs: %v", m)
	}
	if _, m := list("/agent_runs", url.Values{"agent_id": {a2}}); len(m["runs"].([]any)) != 1 {
		t.Fatalf("agent_runs filtered: %v", m)
	}
	// Limit bounds and bad cursor.
	for _, bad := range []url.Values{{"limit": {"0"}}, {"limit": {"101"}}, {"limit": {"x"}}} {
		if st, m := list("/agent_runs", bad); st != 422 && st != 400 {
			t.Fatalf("limit %v: %d %v", bad, st, m)
		}
	}
	if st, _ := list("/agent_runs", url.Values{"limit": {"100"}}); st != 200 {
		t.Fatalf("limit 100: %d", st)
	}
	if st, m := list("/agent_runs", url.Values{"cursor": {"garbage!"}}); st != 400 {
		t.Fatalf("bad cursor: %d %v", st, m)
	}
	// Status filter (comma list) and from/to (inclusive, on creation time).
	if _, m := list("/agent/"+a1+"/runs", url.Values{"status": {"completed,failed"}}); len(m["runs"].([]any)) != 2 {
		t.Fatalf("status filter: %v", m)
	}
	if st, _ := list("/agent_runs", url.Values{"status": {"bogus"}}); st != 400 {
		t.Fatalf("bad status: %d", st)
	}
	from := start.Add(5 * time.Minute).Format(time.RFC3339)
	if _, m := list("/agent/"+a1+"/runs", url.Values{"from": {from}}); len(m["runs"].([]any)) != 2 {
		t.Fatalf("from filter: %v", m)
	}
	to := start.Add(time.Minute).Format(time.RFC3339)
	if _, m := list("/agent/"+a1+"/runs", url.Values{"to": {to}}); len(m["runs"].([]any)) != 2 {
		t.Fatalf("to filter: %v", m)
	}
	if st, _ := list("/agent_runs", url.Values{"from": {"yesterday"}}); st != 400 {
		t.Fatalf("bad from: %d", st)
	}
	if st, _ := list("/agent/"+newUUID()+"/runs", nil); st != 404 {
		t.Fatalf("unknown agent: %d", st)
	}
}

func TestDownloadRangeExpiryAndRefresh(t *testing.T) {
	clock := newClock()
	s := newFake(t, Options{Now: clock.Now, OutputSize: 5000, DownloadURLTTL: time.Hour})
	agentID := s.AddAgent(AgentSpec{})
	vid, sum := uploadContent(t, s, "download me")
	runID := startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}})
	out := getRun(t, s, runID)["outputs"].([]any)[0].(map[string]any)
	link := out["video_url"].(string)
	want := OutputBytes(agentID, sum, 0, 5000)
	if !strings.Contains(string(want[:200]), agentID) || !strings.Contains(string(want[:200]), sum) {
		t.Fatalf("OutputBytes header lacks agent or hash: %q", want[:200])
	}

	get := func(u, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", u, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := testHTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := get(link, "")
	if resp.StatusCode != 200 || resp.ContentLength != 5000 || string(b) != string(want) {
		t.Fatalf("full: %d len %d", resp.StatusCode, resp.ContentLength)
	}
	resp, b = get(link, "bytes=1000-")
	if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 1000-4999/5000" || string(b) != string(want[1000:]) {
		t.Fatalf("range: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	if resp, _ = get(link, "bytes=6000-"); resp.StatusCode != 416 {
		t.Fatalf("out of range: %d", resp.StatusCode)
	}
	// Bad signature.
	if resp, b = get(strings.Replace(link, "sig=", "sig=00", 1), ""); resp.StatusCode != 403 || !strings.Contains(string(b), "AccessDenied") {
		t.Fatalf("bad sig: %d %s", resp.StatusCode, b)
	}
	// Expiry via the clock, then a fresh URL from re-GETting the run.
	clock.Advance(time.Hour + 2*time.Second)
	if resp, b = get(link, ""); resp.StatusCode != 403 || !strings.Contains(string(b), "<Code>ExpiredToken</Code>") {
		t.Fatalf("expired: %d %s", resp.StatusCode, b)
	}
	fresh := getRun(t, s, runID)["outputs"].([]any)[0].(map[string]any)["video_url"].(string)
	if fresh == link {
		t.Fatal("re-GET returned the same URL")
	}
	if resp, b = get(fresh, ""); resp.StatusCode != 200 || string(b) != string(want) {
		t.Fatalf("fresh: %d", resp.StatusCode)
	}
	thumb := getRun(t, s, runID)["outputs"].([]any)[0].(map[string]any)["thumbnail_url"].(string)
	if resp, _ = get(thumb, ""); resp.StatusCode != 200 {
		t.Fatalf("thumbnail: %d", resp.StatusCode)
	}
	// An unknown render with a valid signature is 404.
	exp := fmt.Sprint(clock.Now().Add(time.Hour).Unix())
	if resp, _ = get(s.RootURL()+"/download/x?expires="+exp+"&sig="+s.sign("download", "x", exp), ""); resp.StatusCode != 404 {
		t.Fatalf("unknown render: %d", resp.StatusCode)
	}
}

func TestOutputBytesDeterministic(t *testing.T) {
	a := OutputBytes("agent", "hash", 1, 300)
	if len(a) != 300 || string(a) != string(OutputBytes("agent", "hash", 1, 300)) {
		t.Fatal("not deterministic")
	}
	if string(a) == string(OutputBytes("agent", "hash", 2, 300)) || string(a) == string(OutputBytes("agent", "other", 1, 300)) {
		t.Fatal("index or hash does not change the bytes")
	}
	if len(OutputBytes("a", "b", 0, 0)) != 0 {
		t.Fatal("size 0")
	}
	if string(OutputBytes("agent", "hash", 1, 10)) != string(a[:10]) {
		t.Fatal("truncation is not a prefix")
	}
}

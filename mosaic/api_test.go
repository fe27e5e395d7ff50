package mosaic_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

func TestWhoAmIBothShapes(t *testing.T) {
	ctx := context.Background()
	e := setup(t, mosaictest.Options{})
	id, err := e.client.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.OrganizationID == "" || id.OrganizationName == "" || id.Scopes != nil || id.CreatedAt.IsZero() {
		t.Errorf("newest shape: %+v", id)
	}
	if !strings.HasPrefix(id.String(), "organization ") {
		t.Errorf("String() = %q", id.String())
	}
	e.fake.SetLegacyWhoAmI(true)
	id, err = e.client.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID == "" || id.Email == "" || id.APIKeyID == "" || id.OrganizationID != "" {
		t.Errorf("legacy shape: %+v", id)
	}
	if id.String() != "user "+id.Email {
		t.Errorf("String() = %q", id.String())
	}
}

func TestWhoAmIScopes(t *testing.T) {
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"organization_id":"o","organization_name":"Acme","organization_slug":"acme","scopes":["agents:read"],"created_at":"2026-01-02T03:04:05.123456","unknown":1}`))
	}))
	c, _ := newClient(t, srv.URL+basePath)
	id, err := c.WhoAmI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Scopes) != 1 || id.Scopes[0] != "agents:read" || id.CreatedAt.Year() != 2026 || id.String() != "organization Acme (acme)" {
		t.Errorf("identity %+v", id)
	}
}

func TestBadKeyIsAuth(t *testing.T) {
	e := setup(t, mosaictest.Options{}, func(o *mosaic.Options) { o.APIKey = "mk_wrong_key_value" })
	_, err := e.client.WhoAmI(context.Background())
	var ae *mosaic.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Code != "invalid_api_key" {
		t.Fatalf("err = %v", err)
	}
	if !mosaic.IsAuth(err) || !mosaic.IsPermanent(err) || mosaic.IsRetryable(err) {
		t.Errorf("classification of %v", err)
	}
	if strings.Contains(err.Error(), "mk_wrong_key_value") {
		t.Errorf("key leaked: %v", err)
	}
	if e.requests("GET whoami 401") != 1 {
		t.Errorf("401 retried: %v", e.fake.RequestKeys())
	}
	if !strings.Contains(ae.URL, basePath+"/whoami") {
		t.Errorf("URL %q not under the base path", ae.URL)
	}
}

func TestSetAPIKeyAppliesToTheNextRequest(t *testing.T) {
	e := setup(t, mosaictest.Options{}, func(o *mosaic.Options) { o.APIKey = "mk_old_key_value" })
	ctx := context.Background()
	_, err := e.client.WhoAmI(ctx)
	if !mosaic.IsAuth(err) {
		t.Fatalf("old key: err = %v, want a rejected key", err)
	}
	if err := e.client.SetAPIKey("mk_bad key"); err == nil {
		t.Fatal("SetAPIKey accepted a key with a space")
	}
	if err := e.client.SetAPIKey(mosaictest.DefaultAPIKey); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.WhoAmI(ctx); err != nil {
		t.Fatalf("new key: %v", err)
	}
	// Both keys stay out of error text.
	if err := e.client.SetAPIKey("mk_third_key_value"); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.WhoAmI(ctx)
	if err == nil || strings.Contains(err.Error(), "mk_third_key_value") ||
		strings.Contains(err.Error(), mosaictest.DefaultAPIKey) {
		t.Fatalf("err = %v", err)
	}
}

func TestGetAgent(t *testing.T) {
	e := setup(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{Name: "Shorts", Nodes: []string{"n-in", "n-edit"}}}})
	ctx := context.Background()
	agentID := e.fake.AgentIDs()[0]
	a, err := e.client.GetAgent(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != agentID || a.Name != "Shorts" || len(a.Nodes) != 2 || a.Nodes[0].ID != "n-in" || a.Nodes[1].ID != "n-edit" {
		t.Fatalf("agent %+v", a)
	}
	if a.Nodes[0].TypeID == "" || a.Nodes[0].TypeName == "" {
		t.Errorf("node type missing: %+v", a.Nodes[0])
	}
	if in := a.VideoInputs(); len(in) != 1 || in[0].ID != "n-in" {
		t.Errorf("video inputs %+v", in)
	}
	_, err = e.client.GetAgent(ctx, "no-such-agent")
	if !mosaic.IsNotFound(err) || !mosaic.IsPermanent(err) {
		t.Errorf("unknown agent: %v", err)
	}
}

// An older variant lists nodes flat under "nodes".
func TestGetAgentOlderNodeShape(t *testing.T) {
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"agent":{"id":"a1","name":"Old"},"nodes":[{"id":"n1","node_type_id":"` + mosaic.VideoInputNodeType +
			`","node_type_name":"Video Input"},{"id":"n2","node_type_id":"x","node_type_name":"AI Edit"}]}`))
	}))
	c, _ := newClient(t, srv.URL+basePath)
	a, err := c.GetAgent(context.Background(), "a1")
	if err != nil || len(a.Nodes) != 2 || a.Nodes[1].TypeName != "AI Edit" || len(a.VideoInputs()) != 1 {
		t.Fatalf("agent %+v %v", a, err)
	}
	if _, ok := a.Node("n2"); !ok {
		t.Fatal("Node(n2) not found")
	}
}

// The whole newest flow against the fake: upload, finalize, run, poll, download every output.
func TestFlowUploadsAPI(t *testing.T) {
	testFlow(t, mosaic.UploadsAPI)
}

func TestFlowVideosAPI(t *testing.T) {
	testFlow(t, mosaic.VideosAPI)
}

func testFlow(t *testing.T, api mosaic.UploadAPI) {
	e := setup(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{Outputs: 2}}, OutputSize: 300 << 10})
	ctx := context.Background()
	agentID := e.fake.AgentIDs()[0]
	content := bytes.Repeat([]byte("mosaic-video "), 50_000)
	videoID := e.uploadBytes(t, ctx, api, "clip.mov", content)

	runID, err := e.client.RunAgent(ctx, agentID, mosaic.RunRequest{VideoIDs: []string{videoID}})
	if err != nil {
		t.Fatal(err)
	}
	infos := e.fake.Runs()
	if len(infos) != 1 || infos[0].ID != runID || infos[0].ContentSHA256[0] != sha256Hex(content) {
		t.Fatalf("fake runs %+v", infos)
	}
	var run *mosaic.Run
	waitUntil(t, "terminal run", func() bool {
		run, err = e.client.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		return run.Terminal()
	})
	if run.ID != runID || run.AgentID != agentID || run.Status != mosaic.StatusCompleted || len(run.Outputs) != 2 {
		t.Fatalf("run %+v", run)
	}
	for i, o := range run.Outputs {
		if o.ID == "" || o.CompletedAt.IsZero() {
			t.Errorf("output %d: %+v", i, o)
		}
		var buf bytes.Buffer
		var lastDone, lastTotal int64
		n, err := e.client.Download(ctx, o.VideoURL, &buf, mosaic.DownloadOptions{Progress: func(d, tot int64) { lastDone, lastTotal = d, tot }})
		if err != nil {
			t.Fatalf("download %d: %v", i, err)
		}
		want := mosaictest.OutputBytes(agentID, sha256Hex(content), i, 300<<10)
		if !bytes.Equal(buf.Bytes(), want) || n != int64(len(want)) || lastDone != n || lastTotal != n {
			t.Errorf("output %d: got %d bytes (n=%d, progress %d/%d), want %d", i, buf.Len(), n, lastDone, lastTotal, len(want))
		}
	}
	st := e.fake.Stats()
	if st.StoragePosts != 1 || st.BytesUploaded != int64(len(content)) || st.Finalizes != 1 || st.RunsCreated != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestGetUploadURLKeepsFieldOrder(t *testing.T) {
	var gotBody map[string]any
	var gotPath, gotCT string
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotCT = r.URL.Path, r.Header.Get("Content-Type")
		gotBody = nil
		_ = json.NewDecoder(r.Body).Decode(&gotBody)
		if strings.HasSuffix(r.URL.Path, "/uploads/video/get_upload_url") {
			_, _ = w.Write([]byte(`{"video_id":"v1","upload_url":"https://s.example/b?sig=1","upload_fields":{"x-goog-signature":"s","key":"uploads/v1","policy":"p","x-goog-date":"d","acl":"private"},"max_file_size_bytes":5368709120,"extra":true}`))
			return
		}
		_, _ = w.Write([]byte(`{"video_id":"v2","upload_url":"https://s.example/b","method":"POST","fields":{"policy":"p2","key":"uploads/v2","x-goog-algorithm":"GOOG4-RSA-SHA256"}}`))
	}))
	c, _ := newClient(t, srv.URL+basePath)
	ctx := context.Background()
	tg, err := c.GetUploadURL(ctx, mosaic.UploadRequest{Filename: "a.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	if gotPath != basePath+"/uploads/video/get_upload_url" || gotBody != nil || gotCT != "" {
		t.Errorf("newest request: path %q body %v content-type %q", gotPath, gotBody, gotCT)
	}
	if tg.API != mosaic.UploadsAPI || tg.VideoID != "v1" || tg.MaxFileSize != 5368709120 || fieldNames(tg.Fields) != "x-goog-signature,key,policy,x-goog-date,acl" {
		t.Errorf("target %+v", tg)
	}
	tg, err = c.GetUploadURL(ctx, mosaic.UploadRequest{API: mosaic.VideosAPI, Filename: "b.mkv", FileSize: 10, Width: 4, Height: 3, DurationMS: 99})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"filename": "b.mkv", "content_type": "video/x-matroska", "file_size": 10.0, "width": 4.0, "height": 3.0, "duration_ms": 99.0}
	if gotPath != basePath+"/videos/get_upload_url" || gotCT != "application/json" || !equalJSON(gotBody, want) {
		t.Errorf("videos request: path %q ct %q body %v", gotPath, gotCT, gotBody)
	}
	if tg.API != mosaic.VideosAPI || tg.VideoID != "v2" || fieldNames(tg.Fields) != "policy,key,x-goog-algorithm" {
		t.Errorf("videos target %+v", tg)
	}
}

func fieldNames(fs []mosaic.FormField) string {
	var n []string
	for _, f := range fs {
		n = append(n, f.Name)
	}
	return strings.Join(n, ",")
}

func equalJSON(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestFinalizeRetriesNotUploaded(t *testing.T) {
	e := setup(t, mosaictest.Options{})
	ctx := context.Background()
	tg, err := e.client.GetUploadURL(ctx, mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Upload(ctx, tg, mosaic.UploadFile{Name: "a.mp4", Size: 3, Body: strings.NewReader("abc")}, nil); err != nil {
		t.Fatal(err)
	}
	e.fake.InjectFault(mosaictest.RouteFinalize, mosaictest.Fault{Kind: mosaictest.FaultNotUploaded, Count: 2})
	if err := e.client.FinalizeUpload(ctx, mosaic.UploadsAPI, tg.VideoID); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if got := e.requests("POST finalize 400"); got != 2 {
		t.Errorf("400s = %d, want 2 (%v)", got, e.fake.RequestKeys())
	}
	if !strings.Contains(e.logs.String(), "succeeded after retries") {
		t.Errorf("no success-after-retries log:\n%s", e.logs.String())
	}
	// Finalize is idempotent: repeating it is fine.
	if err := e.client.FinalizeUpload(ctx, "", tg.VideoID); err != nil {
		t.Errorf("repeat finalize: %v", err)
	}
}

func TestFinalizeNeverUploadedGivesUp(t *testing.T) {
	e := setup(t, mosaictest.Options{}, func(o *mosaic.Options) { o.MaxRetries = 2 })
	ctx := context.Background()
	tg, err := e.client.GetUploadURL(ctx, mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	err = e.client.FinalizeUpload(ctx, mosaic.UploadsAPI, tg.VideoID)
	var ae *mosaic.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || !mosaic.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if got := e.requests("POST finalize 400"); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
	err = e.client.FinalizeUpload(ctx, mosaic.UploadsAPI, "00000000-0000-4000-8000-000000000000")
	if !mosaic.IsNotFound(err) {
		t.Errorf("unknown video: %v", err)
	}
}

func TestFinalizeVideosAPI(t *testing.T) {
	e := setup(t, mosaictest.Options{})
	id := e.uploadBytes(t, context.Background(), mosaic.VideosAPI, "x.mp4", []byte("legacy bytes"))
	if e.fake.Stats().Finalizes != 1 || id == "" {
		t.Errorf("stats %+v", e.fake.Stats())
	}
}

func TestGetRunShapes(t *testing.T) {
	bodies := map[string]string{
		"/agent_run/old":   `{"agent_id":"a","status":"running","started_at":"2025-01-10T14:30:00Z","outputs":[]}`,
		"/agent_run/camel": `{"run_id":"camel","status":"failed","status_message":"Insufficient credits","needsCredits":true,"errors":[{"original_node_id":"n1","messages":["FFmpeg render failed"]},"plain"],"node_status_counts":{"completed":2,"failed":1}}`,
		"/agent_run/full": `{"agent_id":"a","status":"partial_complete","status_message":null,"needs_credits":false,"errors":[],
			"inputs":[{"video_url":"https://s/v?sig=1","thumbnail_url":"https://s/t"}],
			"outputs":[{"id":"r1","video_url":"https://s/o?sig=2","thumbnail_url":null,"premiere_prproj_url":"https://p/z.zip?x","completed_at":"2025-01-10T14:35:30Z","original_node_id":"n2","sources":[{"provider":"getty"}]}]}`,
		"/agent_run/weird": `{"status":"Queued_For_GPU"}`,
	}
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(bodies[strings.TrimPrefix(r.URL.Path, basePath)]))
	}))
	c, logs := newClient(t, srv.URL+basePath)
	ctx := context.Background()

	r, err := c.GetRun(ctx, "old")
	if err != nil || r.ID != "old" || r.Status != "running" || r.Terminal() || r.NeedsCredits || r.Errors != nil || r.StartedAt.IsZero() {
		t.Errorf("old shape: %+v %v", r, err)
	}
	r, err = c.GetRun(ctx, "camel")
	if err != nil || !r.NeedsCredits || !r.Terminal() || r.StatusMessage != "Insufficient credits" || len(r.Errors) != 2 ||
		r.Errors[0].OriginalNodeID != "n1" || r.Errors[0].Messages[0] != "FFmpeg render failed" || r.Errors[1].Messages[0] != "plain" ||
		r.NodeStatusCounts["completed"] != 2 {
		t.Errorf("camel shape: %+v %v", r, err)
	}
	r, err = c.GetRun(ctx, "full")
	if err != nil || r.ID != "full" || r.Status != mosaic.StatusPartialComplete || len(r.Outputs) != 1 || len(r.Inputs) != 1 {
		t.Fatalf("full shape: %+v %v", r, err)
	}
	o := r.Outputs[0]
	if o.ID != "r1" || o.OriginalNodeID != "n2" || o.ThumbnailURL != "" || o.PremiereURL == "" || o.CompletedAt.IsZero() {
		t.Errorf("output %+v", o)
	}
	for range 3 {
		r, err = c.GetRun(ctx, "weird")
		if err != nil || r.Terminal() || r.Status != "queued_for_gpu" {
			t.Errorf("unknown status: %+v %v", r, err)
		}
	}
	if n := strings.Count(logs.String(), "unknown run status"); n != 1 {
		t.Errorf("unknown status logged %d times:\n%s", n, logs.String())
	}
}

func TestListRunsPaging(t *testing.T) {
	e := setup(t, mosaictest.Options{ManualRuns: true, Agents: []mosaictest.AgentSpec{{}, {}}})
	ctx := context.Background()
	ids := e.fake.AgentIDs()
	videoID := e.uploadBytes(t, ctx, mosaic.UploadsAPI, "a.mp4", []byte("content"))
	var first []string
	for i := range 7 {
		agent := ids[0]
		if i >= 5 {
			agent = ids[1]
		}
		id, err := e.client.RunAgent(ctx, agent, mosaic.RunRequest{VideoIDs: []string{videoID}})
		if err != nil {
			t.Fatal(err)
		}
		if agent == ids[0] {
			first = append(first, id)
		}
	}
	if err := e.fake.FinishRun(first[0], mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}

	all, err := e.client.ListRuns(ctx, mosaic.ListRunsOptions{Limit: 2})
	if err != nil || len(all) != 7 {
		t.Fatalf("org-wide: %d runs, %v", len(all), err)
	}
	if got := e.requests("GET list_runs 200"); got != 4 {
		t.Errorf("pages = %d, want 4", got)
	}
	mine, err := e.client.ListRuns(ctx, mosaic.ListRunsOptions{AgentID: ids[0], Limit: 2})
	if err != nil || len(mine) != 5 {
		t.Fatalf("per agent: %d runs, %v", len(mine), err)
	}
	for _, r := range mine {
		if r.AgentID != ids[0] || r.ID == "" || r.StartedAt.IsZero() {
			t.Errorf("run %+v", r)
		}
	}
	capped, err := e.client.ListRuns(ctx, mosaic.ListRunsOptions{Limit: 2, MaxRuns: 3})
	if err != nil || len(capped) != 3 {
		t.Errorf("MaxRuns: %d runs, %v", len(capped), err)
	}
	done, err := e.client.ListRuns(ctx, mosaic.ListRunsOptions{AgentID: ids[0], Status: []string{"completed", "failed"},
		From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)})
	if err != nil || len(done) != 1 || done[0].ID != first[0] || done[0].Status != mosaic.StatusCompleted {
		t.Errorf("status filter: %+v %v", done, err)
	}
}

// Cursor passed verbatim and every filter repeated on every page.
func TestListRunsQuery(t *testing.T) {
	var queries []string
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		if r.URL.Query().Get("cursor") == "" {
			_, _ = w.Write([]byte(`{"runs":[{"run_id":"r1","agent_id":"a","status":"completed","outputs":[{"id":"o1","video_url":"https://s/o"}]}],"next_cursor":"c/1+=="}`))
			return
		}
		_, _ = w.Write([]byte(`{"runs":[{"run_id":"r2","status":"running","inputs":[{"video_id":"v"}]}],"next_cursor":null}`))
	}))
	c, _ := newClient(t, srv.URL+basePath)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
	runs, err := c.ListRuns(context.Background(), mosaic.ListRunsOptions{AgentID: "ag/1", Status: []string{"running", "completed"}, From: from, Limit: 500})
	if err != nil || len(runs) != 2 || len(runs[0].Outputs) != 1 || runs[1].Inputs[0].VideoID != "v" {
		t.Fatalf("runs %+v err %v", runs, err)
	}
	want := []string{
		basePath + "/agent/ag%2F1/runs?from=2025-12-31T23%3A00%3A00Z&limit=100&status=running%2Ccompleted",
		basePath + "/agent/ag%2F1/runs?cursor=c%2F1%2B%3D%3D&from=2025-12-31T23%3A00%3A00Z&limit=100&status=running%2Ccompleted",
	}
	if strings.Join(queries, "\n") != strings.Join(want, "\n") {
		t.Errorf("queries:\n%s\nwant:\n%s", strings.Join(queries, "\n"), strings.Join(want, "\n"))
	}
}

func TestCancelRun(t *testing.T) {
	e := setup(t, mosaictest.Options{ManualRuns: true, Agents: []mosaictest.AgentSpec{{}}})
	ctx := context.Background()
	videoID := e.uploadBytes(t, ctx, mosaic.UploadsAPI, "a.mp4", []byte("content"))
	runID, err := e.client.RunAgent(ctx, e.fake.AgentIDs()[0], mosaic.RunRequest{VideoIDs: []string{videoID}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.CancelRun(ctx, runID); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.GetRun(ctx, runID)
	if err != nil || r.Status != mosaic.StatusCancelled || !r.Terminal() {
		t.Fatalf("after cancel: %+v %v", r, err)
	}
	err = e.client.CancelRun(ctx, runID)
	if !mosaic.IsPermanent(err) || mosaic.IsRetryable(err) {
		t.Errorf("cancel of a cancelled run: %v", err)
	}
	if err := e.client.CancelRun(ctx, "nope"); !mosaic.IsNotFound(err) {
		t.Errorf("cancel unknown run: %v", err)
	}
}

func TestResumeRun(t *testing.T) {
	e := setup(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{Outcome: mosaictest.OutcomeNeedsCredits}}})
	ctx := context.Background()
	videoID := e.uploadBytes(t, ctx, mosaic.UploadsAPI, "a.mp4", []byte("content"))
	runID, err := e.client.RunAgent(ctx, e.fake.AgentIDs()[0], mosaic.RunRequest{VideoIDs: []string{videoID}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := e.client.GetRun(ctx, runID); err != nil || r.Status != mosaic.StatusFailed || !r.NeedsCredits {
		t.Fatalf("before resume: %+v %v", r, err)
	}
	if err := e.client.ResumeRun(ctx, runID); err != nil {
		t.Fatal(err)
	}
	if r, err := e.client.GetRun(ctx, runID); err != nil || r.NeedsCredits || r.Status == mosaic.StatusFailed {
		t.Fatalf("after resume: %+v %v", r, err)
	}
	if err := e.client.ResumeRun(ctx, runID); !mosaic.IsConflict(err) {
		t.Errorf("resume of a run that is not failed: %v, want a conflict", err)
	}
	if err := e.client.ResumeRun(ctx, "nope"); !mosaic.IsNotFound(err) {
		t.Errorf("resume unknown run: %v", err)
	}
}

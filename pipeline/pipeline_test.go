package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

type harness struct {
	t      *testing.T
	fake   *mosaictest.Server
	st     *store.SQLite
	client *mosaic.Client
	p      *pipeline.Pipeline
	folder pipeline.Folder
	now    func() time.Time
	cancel context.CancelFunc
	done   chan error
}

type harnessOpts struct {
	agents  []mosaictest.AgentSpec
	fake    func(*mosaictest.Options)
	folder  func(*pipeline.Folder)
	options func(*pipeline.Options)
	noStart bool
	// now, when set, is the one clock of the fake, the client and the pipeline (a test that
	// moves time moves it for all three).
	now func() time.Time
}

func newHarness(t *testing.T, ho harnessOpts) *harness {
	t.Helper()
	if len(ho.agents) == 0 {
		ho.agents = []mosaictest.AgentSpec{{Name: "default"}}
	}
	fo := mosaictest.Options{Agents: ho.agents, BasePath: "/api", Now: ho.now}
	if ho.fake != nil {
		ho.fake(&fo)
	}
	fake, err := mosaictest.NewServer(fo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	client, err := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: mosaictest.DefaultAPIKey, RetryBaseDelay: 5 * time.Millisecond, MaxRetries: 2, Now: ho.now})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, fake: fake, st: st, client: client, now: ho.now}
	h.folder = pipeline.Folder{
		Name: "in", Input: filepath.Join(dir, "in"), Output: filepath.Join(dir, "out"), AgentID: fake.AgentIDs()[0],
	}
	if ho.folder != nil {
		ho.folder(&h.folder)
	}
	for _, d := range []string{h.folder.Input, h.folder.Output} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.start(ho.options)
	return h
}

func (h *harness) start(tweak func(*pipeline.Options)) {
	h.t.Helper()
	opts := pipeline.Options{
		Folders:        []pipeline.Folder{h.folder},
		Store:          h.st,
		Client:         h.client,
		Owner:          "test-owner",
		PollInterval:   20 * time.Millisecond,
		ClaimEvery:     20 * time.Millisecond,
		AuthRecheck:    50 * time.Millisecond,
		ReconcileAfter: 300 * time.Millisecond,
		Recheck:        50 * time.Millisecond,
		Lease:          3 * time.Second,
		Retry:          pipeline.Retry{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond, MaxAttempts: 6},
		Logger:         slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:            h.now,
	}
	if tweak != nil {
		tweak(&opts)
	}
	p, err := pipeline.New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.p = p
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- p.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Error("pipeline did not stop within 10s")
	}
	h.cancel = nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// video returns a small whole MP4 whose content is unique to seed.
func video(seed string) []byte {
	box := func(typ string, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
		return append(append(b, typ...), payload...)
	}
	out := box("ftyp", []byte("isom\x00\x00\x02\x00isom"))
	out = append(out, box("moov", box("mvhd", make([]byte, 100)))...)
	return append(out, box("mdat", bytes.Repeat([]byte(seed), 200))...)
}

// drop writes a file into the input folder and reports it to the pipeline.
func (h *harness) drop(rel string, data []byte) pipeline.File {
	h.t.Helper()
	p := filepath.Join(h.folder.Input, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		h.t.Fatal(err)
	}
	f := h.fileOf(rel)
	if err := h.p.FileReady(context.Background(), f); err != nil {
		h.t.Fatal(err)
	}
	return f
}

func (h *harness) fileOf(rel string) pipeline.File {
	h.t.Helper()
	p := filepath.Join(h.folder.Input, filepath.FromSlash(rel))
	fi, err := os.Stat(p)
	if err != nil {
		h.t.Fatal(err)
	}
	return pipeline.File{Folder: h.folder.Input, Path: p, Rel: rel, Size: fi.Size(), ModTime: fi.ModTime(), FileID: pipeline.FileIdentity(p)}
}

// waitClosed waits until the newest job at rel is no longer open and returns it.
func (h *harness) waitClosed(rel string) store.Job {
	h.t.Helper()
	return h.waitJob(rel, func(j store.Job) bool { return !j.Status.Open() })
}

func (h *harness) waitJob(rel string, cond func(store.Job) bool) store.Job {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last store.Job
	for time.Now().Before(deadline) {
		jobs, err := h.st.JobsAt(context.Background(), h.folder.Input, rel)
		if err != nil {
			h.t.Fatal(err)
		}
		if len(jobs) > 0 {
			last = jobs[0]
			if cond(last) {
				return last
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("job for %s did not reach the expected state; last: status=%s step=%s err=%q note=%q", rel, last.Status, last.Step, last.LastError, last.Note)
	return last
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkOutputs asserts that exactly the expected output files exist with the fake's bytes.
func (h *harness) checkOutputs(agentID string, src []byte, names ...string) {
	h.t.Helper()
	for i, name := range names {
		got, err := os.ReadFile(filepath.Join(h.folder.Output, filepath.FromSlash(name)))
		if err != nil {
			h.t.Fatalf("output %d: %v", i, err)
		}
		want := mosaictest.OutputBytes(agentID, sha(src), i, len(got))
		if len(got) == 0 || !bytes.Equal(got, want) {
			h.t.Fatalf("output %s: content differs from what the fake rendered", name)
		}
	}
	h.noTemps()
}

func (h *harness) noTemps() {
	h.t.Helper()
	filepath.WalkDir(h.folder.Output, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".mosaic-partial") {
			h.t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func (h *harness) runsFor(src []byte) int {
	return h.fake.Stats().RunsByContent[mosaictest.RunKey{ContentSHA256: sha(src), AgentID: h.folder.AgentID}]
}

func TestHappyPathMirrorsLayout(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	src := video("a")
	h.drop("sub/dir/日本語 clip.mov", src)
	j := h.waitClosed("sub/dir/日本語 clip.mov")
	if j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "sub/dir/日本語 clip.mp4")
	st := h.fake.Stats()
	if st.UploadURLsIssued != 1 || st.StoragePosts != 1 || st.RunsCreated != 1 {
		t.Fatalf("want one upload URL, one storage POST, one run; got %+v", st)
	}
	// The same file reported again (a rescan or a restart) is not queued again.
	if err := h.p.FileReady(context.Background(), h.fileOf("sub/dir/日本語 clip.mov")); err != nil {
		t.Fatal(err)
	}
	jobs, _ := h.st.JobsAt(context.Background(), h.folder.Input, "sub/dir/日本語 clip.mov")
	if len(jobs) != 1 {
		t.Fatalf("a known file made %d jobs", len(jobs))
	}
}

func TestSeveralOutputsAreNumberedInOrder(t *testing.T) {
	h := newHarness(t, harnessOpts{agents: []mosaictest.AgentSpec{{Outputs: 3}}})
	src := video("multi")
	h.drop("take.mp4", src)
	if j := h.waitClosed("take.mp4"); j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "take-1.mp4", "take-2.mp4", "take-3.mp4")
}

func TestNamesDifferingOnlyByExtensionDoNotCollide(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b := video("mov version"), video("mp4 version")
	h.drop("clip.mov", a)
	if j := h.waitClosed("clip.mov"); j.Status != store.StatusDone {
		t.Fatalf("clip.mov: %s %s", j.Status, j.LastError)
	}
	h.drop("clip.mp4", b)
	if j := h.waitClosed("clip.mp4"); j.Status != store.StatusDone {
		t.Fatalf("clip.mp4: %s %s", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, a, "clip.mp4")
	h.checkOutputs(h.folder.AgentID, b, "clip.mp4.mp4")
}

func TestForeignFileInOutputIsNeverOverwritten(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	foreign := filepath.Join(h.folder.Output, "edit.mp4")
	if err := os.WriteFile(foreign, []byte("the editor's own file"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := video("edit")
	h.drop("edit.mov", src)
	if j := h.waitClosed("edit.mov"); j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	if b, _ := os.ReadFile(foreign); string(b) != "the editor's own file" {
		t.Fatal("a file the daemon did not write was overwritten")
	}
	h.checkOutputs(h.folder.AgentID, src, "edit.mov.mp4")
}

func TestChangedFileIsProcessedAgainAndReplacesItsOutput(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	v1 := video("version one")
	h.drop("cut.mov", v1)
	h.waitClosed("cut.mov")
	v2 := video("version two, longer")
	p := filepath.Join(h.folder.Input, "cut.mov")
	if err := os.WriteFile(p, v2, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(p, later, later)
	if err := h.p.FileReady(context.Background(), h.fileOf("cut.mov")); err != nil {
		t.Fatal(err)
	}
	j := h.waitJob("cut.mov", func(j store.Job) bool { return j.Size == int64(len(v2)) && !j.Status.Open() })
	if j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, v2, "cut.mp4")
	if h.runsFor(v1) != 1 || h.runsFor(v2) != 1 {
		t.Fatalf("runs: v1=%d v2=%d, want 1 each", h.runsFor(v1), h.runsFor(v2))
	}
}

// A renamed (or moved) processed file is a copy: its new mirror path gets the outputs, without
// a run.
func TestRenamedProcessedFileIsNotRunAgain(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	src := video("rename me")
	h.drop("old name.mov", src)
	h.waitClosed("old name.mov")
	if err := os.Rename(filepath.Join(h.folder.Input, "old name.mov"), filepath.Join(h.folder.Input, "new name.mov")); err != nil {
		t.Fatal(err)
	}
	if err := h.p.FileReady(context.Background(), h.fileOf("new name.mov")); err != nil {
		t.Fatal(err)
	}
	j := h.waitClosed("new name.mov")
	if j.Status != store.StatusDone || !strings.Contains(j.Note, "outputs from job") {
		t.Fatalf("want done with the outputs of the first job, got %s %q", j.Status, j.Note)
	}
	h.checkOutputs(h.folder.AgentID, src, "new name.mp4")
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs for one content", n)
	}
}

func TestLostRunStartResponseIsAdoptedNotRerun(t *testing.T) {
	for _, fault := range []mosaictest.Fault{
		{Kind: mosaictest.FaultLoseResponse, Count: 1},
		{Kind: mosaictest.FaultStatus, Status: 502, Count: 1},
	} {
		t.Run(string(fault.Kind), func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.fake.InjectFault(mosaictest.RouteRunAgent, fault)
			src := video("lost " + string(fault.Kind))
			h.drop("lost.mp4", src)
			j := h.waitClosed("lost.mp4")
			if j.Status != store.StatusDone {
				t.Fatalf("status %s: %s", j.Status, j.LastError)
			}
			// A lost response is adopted; a 502 that created nothing is found empty twice, over
			// ReconcileAfter, and started once more: one run either way.
			if n := h.runsFor(src); n != 1 {
				t.Fatalf("%d runs, want 1", n)
			}
			h.checkOutputs(h.folder.AgentID, src, "lost.mp4")
		})
	}
}

func TestCrashDuringRunStartIsReconciled(t *testing.T) {
	for _, c := range []struct{ legacy, sent bool }{{false, true}, {true, true}, {false, false}} {
		t.Run(fmt.Sprintf("legacy=%v,sent=%v", c.legacy, c.sent), func(t *testing.T) { testCrashDuringRunStart(t, c.legacy, c.sent) })
	}
}

// testCrashDuringRunStart: legacy is a job left by a version that recorded no window in
// Mosaic's clock; sent says whether the request reached Mosaic before the crash. If it did not,
// the restart concludes so after reconcile_after from its own start, not from a bound of the
// request's timeout (the waits below are shorter than that timeout).
func testCrashDuringRunStart(t *testing.T, legacy, sent bool) {
	h := newHarness(t, harnessOpts{options: func(o *pipeline.Options) {}})
	h.stop()
	// A run the previous process started just before it died, with the job left in
	// "starting run": the restart must adopt it, not start another.
	src := video("crash")
	f := h.dropOnly("crash.mp4", src)
	ctx := context.Background()
	job, _, err := h.st.AddJob(ctx, store.NewJob{Folder: f.Folder, RelPath: f.Rel, Size: f.Size, ModTime: f.ModTime, AgentID: h.folder.AgentID}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	target, err := h.client.GetUploadURL(ctx, mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.client.Upload(ctx, target, mosaic.UploadFile{Name: "crash.mp4", Size: int64(len(src)), Body: bytes.NewReader(src)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.client.FinalizeUpload(ctx, mosaic.UploadsAPI, target.VideoID); err != nil {
		t.Fatal(err)
	}
	job.ContentHash, job.VideoID, job.UploadAPI = sha(src), target.VideoID, string(mosaic.UploadsAPI)
	job.Step, job.RunStartAt = store.StepStartingRun, time.Now()
	if !legacy {
		job.RunWindowFrom = h.client.ServerTime(job.RunStartAt).Add(-time.Second)
	}
	if err := h.st.Save(ctx, &job, "simulated crash"); err != nil {
		t.Fatal(err)
	}
	if sent {
		if _, err := h.client.RunAgent(ctx, h.folder.AgentID, mosaic.RunRequest{VideoIDs: []string{target.VideoID}}); err != nil {
			t.Fatal(err)
		}
	}
	h.start(nil)
	j := h.waitClosed("crash.mp4")
	if j.Status != store.StatusDone || h.runsFor(src) != 1 {
		t.Fatalf("status %s (%s), runs %d; want done with exactly one run", j.Status, j.LastError, h.runsFor(src))
	}
	h.checkOutputs(h.folder.AgentID, src, "crash.mp4")
}

func (h *harness) dropOnly(rel string, data []byte) pipeline.File {
	h.t.Helper()
	p := filepath.Join(h.folder.Input, filepath.FromSlash(rel))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		h.t.Fatal(err)
	}
	return h.fileOf(rel)
}

func TestRunOutcomes(t *testing.T) {
	cases := []struct {
		outcome    mosaictest.Outcome
		wantStatus store.Status
		wantErr    string
		outputs    []string
	}{
		{mosaictest.OutcomePartial, store.StatusDone, "partial_complete", []string{"p.mp4"}}, // 1 of 2 outputs delivered
		{mosaictest.OutcomeFailed, store.StatusFailed, "failed", nil},
		{mosaictest.OutcomeNeedsCredits, store.StatusAttention, "out of credits", nil},
	}
	for _, c := range cases {
		t.Run(string(c.outcome), func(t *testing.T) {
			h := newHarness(t, harnessOpts{agents: []mosaictest.AgentSpec{{Outputs: 2, Outcome: c.outcome}}})
			src := video(string(c.outcome))
			h.drop("p.mp4", src)
			j := h.waitClosed("p.mp4")
			if j.Status != c.wantStatus || !strings.Contains(j.LastError, c.wantErr) {
				t.Fatalf("got %s %q; want %s containing %q", j.Status, j.LastError, c.wantStatus, c.wantErr)
			}
			if c.outputs != nil {
				h.checkOutputs(h.folder.AgentID, src, c.outputs...)
			}
			if n := h.runsFor(src); n != 1 {
				t.Fatalf("%d runs; a failed run must not be re-run automatically", n)
			}
			if _, err := os.Stat(filepath.Join(h.folder.Input, "p.mp4")); err != nil {
				t.Fatal("the source must stay in place")
			}
			if c.outcome == mosaictest.OutcomeNeedsCredits {
				// Credits added: retry resumes the same run rather than paying for a new one.
				if _, err := pipeline.PrepareRetry(&j, time.Now()); err != nil {
					t.Fatal(err)
				}
				if err := h.st.Reopen(context.Background(), &j, "retry"); err != nil {
					t.Fatal(err)
				}
				if j := h.waitJob("p.mp4", func(j store.Job) bool { return j.Status == store.StatusDone }); len(j.Outputs) != 2 {
					t.Fatalf("resumed run wrote %d outputs, want 2", len(j.Outputs))
				}
				if n := h.runsFor(src); n != 1 {
					t.Fatalf("%d runs after resuming, want the same one", n)
				}
				h.checkOutputs(h.folder.AgentID, src, "p-1.mp4", "p-2.mp4")
			}
		})
	}
}

func TestNewRunOnRequest(t *testing.T) {
	h := newHarness(t, harnessOpts{agents: []mosaictest.AgentSpec{{Outcome: mosaictest.OutcomeFailed}}})
	src := video("retry me")
	h.drop("r.mp4", src)
	j := h.waitClosed("r.mp4")
	if j.Status != store.StatusFailed {
		t.Fatalf("status %s", j.Status)
	}
	if _, err := pipeline.PrepareNewRun(&j, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.st.Save(context.Background(), &j, "retry"); err != nil {
		t.Fatal(err)
	}
	h.waitJob("r.mp4", func(j store.Job) bool { return j.RunID != "" && !j.Status.Open() })
	if n := h.runsFor(src); n != 2 {
		t.Fatalf("%d runs after one retry, want 2", n)
	}
	if st := h.fake.Stats(); st.StoragePosts != 1 {
		t.Fatalf("retry uploaded again (%d storage posts)", st.StoragePosts)
	}
}

func TestAfterSuccessMoveAndDelete(t *testing.T) {
	for _, action := range []string{"move", "delete"} {
		t.Run(action, func(t *testing.T) {
			var done string
			h := newHarness(t, harnessOpts{folder: func(f *pipeline.Folder) {
				f.AfterSuccess = action
				if action == "move" {
					done = filepath.Join(filepath.Dir(f.Input), "done")
					f.AfterSuccessMoveTo = done
				}
			}})
			src := video(action)
			h.drop("a/b.mov", src)
			if j := h.waitClosed("a/b.mov"); j.Status != store.StatusDone {
				t.Fatalf("status %s: %s", j.Status, j.LastError)
			}
			h.checkOutputs(h.folder.AgentID, src, "a/b.mp4")
			if _, err := os.Stat(filepath.Join(h.folder.Input, "a/b.mov")); !os.IsNotExist(err) {
				t.Fatal("source still in the input folder")
			}
			if action == "move" {
				if got, err := os.ReadFile(filepath.Join(done, "a/b.mov")); err != nil || !bytes.Equal(got, src) {
					t.Fatalf("source not moved with its relative path: %v", err)
				}
			}
		})
	}
}

func TestNotAVideoFailsClearly(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.drop("notes.mp4", []byte("this is a text file with a video extension"))
	j := h.waitClosed("notes.mp4")
	if j.Status != store.StatusFailed || !strings.Contains(j.LastError, "not a video") {
		t.Fatalf("got %s %q", j.Status, j.LastError)
	}
	if h.fake.Stats().UploadURLsIssued != 0 {
		t.Fatal("a non-video was uploaded")
	}
}

func TestDeletedBeforeUploadIsSkipped(t *testing.T) {
	h := newHarness(t, harnessOpts{options: func(o *pipeline.Options) { o.Limits.Hashes = 1 }})
	h.stop()
	src := video("gone")
	f := h.dropOnly("gone.mp4", src)
	h.start(nil)
	os.Remove(f.Path)
	if err := h.p.FileReady(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	j := h.waitClosed("gone.mp4")
	if j.Status != store.StatusSkipped || !strings.Contains(j.Note, "disappeared") {
		t.Fatalf("got %s %q", j.Status, j.Note)
	}
}

func TestAuthFailurePausesWithoutFailingJobs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.fake.InjectFault(mosaictest.RouteGetUploadURL, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 401, Count: 3})
	src := video("auth")
	h.drop("auth.mp4", src)
	j := h.waitClosed("auth.mp4")
	if j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	if j.Attempts != 0 {
		t.Fatalf("auth pauses must not burn attempts; attempts=%d", j.Attempts)
	}
}

func TestTransientErrorsRetryThenSucceed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.fake.InjectFault(mosaictest.RouteGetUploadURL, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Count: 4})
	h.fake.InjectFault(mosaictest.RouteDownload, mosaictest.Fault{Kind: mosaictest.FaultDrop, Count: 2})
	h.fake.InjectFault(mosaictest.RouteDownload, mosaictest.Fault{Kind: mosaictest.FaultExpired, Count: 1})
	src := video("flaky")
	h.drop("flaky.mp4", src)
	if j := h.waitClosed("flaky.mp4"); j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "flaky.mp4")
}

func TestPermanentErrorFailsAndMovesSource(t *testing.T) {
	var failedDir string
	h := newHarness(t, harnessOpts{folder: func(f *pipeline.Folder) {
		f.AfterFailure = "move"
		failedDir = filepath.Join(filepath.Dir(f.Input), "failed")
		f.AfterFailureMoveTo = failedDir
		f.UpdateParams = map[string]map[string]any{"no-such-node": {"x": 1}}
	}})
	src := video("bad params")
	h.drop("x/bad.mp4", src)
	j := h.waitClosed("x/bad.mp4")
	if j.Status != store.StatusFailed {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	if _, err := os.Stat(filepath.Join(failedDir, "x/bad.mp4")); err != nil {
		t.Fatalf("failed source not moved: %v", err)
	}
	if n := h.runsFor(src); n != 0 {
		t.Fatalf("%d runs", n)
	}
}

func TestIncompleteFileIsRecordedThenSuperseded(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.dropOnly("rec.mp4", []byte("\x00\x00\x00\x10ftypisom\x00\x00\x00\x00"))
	if err := h.p.FileIncomplete(context.Background(), f, "mp4 has no moov box yet"); err != nil {
		t.Fatal(err)
	}
	j := h.waitJob("rec.mp4", func(j store.Job) bool { return true })
	if j.Status != store.StatusAttention || !strings.Contains(j.LastError, "moov") {
		t.Fatalf("got %s %q", j.Status, j.LastError)
	}
	src := video("now whole")
	os.WriteFile(f.Path, src, 0o644)
	later := time.Now().Add(time.Second)
	os.Chtimes(f.Path, later, later)
	if err := h.p.FileReady(context.Background(), h.fileOf("rec.mp4")); err != nil {
		t.Fatal(err)
	}
	h.waitJob("rec.mp4", func(j store.Job) bool { return j.Status == store.StatusDone })
	old, err := h.st.Get(context.Background(), j.ID)
	if err != nil || old.Status != store.StatusSkipped {
		t.Fatalf("the incomplete record should be superseded, got %+v %v", old, err)
	}
}

func TestManyFilesAllFinishWithOneRunEach(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.fake.InjectFault(mosaictest.RouteAny, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 500, Probability: 0.05})
	var srcs [][]byte
	for i := range 20 {
		src := video(fmt.Sprintf("file %d", i))
		srcs = append(srcs, src)
		h.drop(fmt.Sprintf("batch/f%02d.mp4", i), src)
	}
	for i, src := range srcs {
		rel := fmt.Sprintf("batch/f%02d.mp4", i)
		j := h.waitClosed(rel)
		if j.Status != store.StatusDone {
			t.Fatalf("%s: %s %s", rel, j.Status, j.LastError)
		}
		if n := h.runsFor(src); n != 1 {
			t.Fatalf("%s: %d runs", rel, n)
		}
	}
}

func TestRunCreatedAfterTheGatewayTimedOutIsAdopted(t *testing.T) {
	h := newHarness(t, harnessOpts{options: func(o *pipeline.Options) { o.ReconcileAfter = 2 * time.Second }})
	// The gateway answers 504 and creates nothing yet; the backend creates the run a moment
	// later (simulated below with the same video id).
	h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 504, Count: 1})
	src := video("late run")
	h.drop("late.mp4", src)
	j := h.waitJob("late.mp4", func(j store.Job) bool { return j.Step == store.StepStartingRun && j.VideoID != "" })
	waitUntil(t, "the 504", func() bool { return h.fake.Stats().Requests["POST run_agent 504"] == 1 })
	if _, err := h.client.RunAgent(context.Background(), h.folder.AgentID, mosaic.RunRequest{VideoIDs: []string{j.VideoID}}); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("late.mp4"); j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs for one file: the late run was not adopted", n)
	}
}

func TestPollErrorsNeverFailAFollowedRun(t *testing.T) {
	h := newHarness(t, harnessOpts{
		fake:    func(o *mosaictest.Options) { o.ManualRuns = true },
		options: func(o *pipeline.Options) { o.Retry.MaxAttempts = 2 },
	})
	src := video("long run")
	h.drop("long.mp4", src)
	j := h.waitJob("long.mp4", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	// More poll failures than MaxAttempts, spread over the run.
	h.fake.InjectFault(mosaictest.RouteGetRun, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 502, Count: 20})
	waitUntil(t, "the poll errors", func() bool { return h.fake.Stats().Requests["GET get_run 502"] >= 20 })
	if got, _ := h.st.Get(context.Background(), j.ID); !got.Status.Open() {
		t.Fatalf("a run still going on Mosaic was closed as %s: %s", got.Status, got.LastError)
	}
	if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("long.mp4"); j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "long.mp4")
}

func TestFileAppearingDuringDownloadIsNotOverwritten(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.fake.InjectFault(mosaictest.RouteDownload, mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: time.Second, Count: 1})
	src := video("race")
	h.drop("race.mov", src)
	waitUntil(t, "the download to start", func() bool {
		_, err := os.Stat(filepath.Join(h.folder.Output, ".race.mp4.mosaic-partial"))
		return err == nil
	})
	if err := os.WriteFile(filepath.Join(h.folder.Output, "race.mp4"), []byte("an editor's file"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := h.waitClosed("race.mov")
	if j.Status != store.StatusAttention || !strings.Contains(j.LastError, "appeared") {
		t.Fatalf("got %s %q", j.Status, j.LastError)
	}
	if b, _ := os.ReadFile(filepath.Join(h.folder.Output, "race.mp4")); string(b) != "an editor's file" {
		t.Fatal("a file that appeared during the download was overwritten")
	}
	if _, err := os.Stat(filepath.Join(h.folder.Input, "race.mov")); err != nil {
		t.Fatal("the source must stay")
	}
}

func TestRetryKeepsWhatARunAlreadyDid(t *testing.T) {
	cases := []struct {
		step       store.Step
		runStatus  string
		wantStep   store.Step
		wantStatus string // the run status after the retry
		newRun     bool   // PrepareRetry refuses: only PrepareNewRun can
	}{
		{store.StepRunFinished, "partial_complete", store.StepRunFinished, "partial_complete", false},
		{store.StepRunFinished, "completed", store.StepRunFinished, "completed", false},
		{store.StepRunStarted, "running", store.StepRunStarted, "running", false},
		{store.StepRunStarted, "failed", store.StepRunStarted, pipeline.RunResumeRequested, false},
		{store.StepRunStarted, "cancelled", store.StepRunStarted, pipeline.RunResumeRequested, false},
		{store.StepRunStarted, pipeline.RunNeedsCredits, store.StepRunStarted, pipeline.RunResumeRequested, false},
		{store.StepRunStarted, pipeline.RunNotFound, store.StepFinalized, "", true},
		{store.StepStartingRun, pipeline.RunStartLost, store.StepFinalized, "", true},
		{store.StepSettled, "", store.StepSettled, "", false},
	}
	for _, c := range cases {
		fresh := func() store.Job {
			return store.Job{ID: 1, Status: store.StatusFailed, Step: c.step, RunID: "r", VideoID: "v", RunStatus: c.runStatus, Outputs: []store.Output{{Path: "a.mp4"}}}
		}
		j := fresh()
		if pipeline.NeedsNewRun(&j) != c.newRun {
			t.Errorf("%s/%s: NeedsNewRun = %v", c.step, c.runStatus, !c.newRun)
		}
		_, err := pipeline.PrepareRetry(&j, time.Now())
		if c.newRun {
			if !errors.Is(err, pipeline.ErrNeedsNewRun) {
				t.Errorf("%s/%s: PrepareRetry = %v, want ErrNeedsNewRun", c.step, c.runStatus, err)
			}
			j = fresh()
			_, err = pipeline.PrepareNewRun(&j, time.Now())
		}
		if err != nil {
			t.Fatal(err)
		}
		if j.Step != c.wantStep || j.RunStatus != c.wantStatus || (j.RunID == "") != c.newRun || j.Status != store.StatusActive {
			t.Errorf("%s/%s: step %s, run %q status %q; want step %s status %q, new run %v", c.step, c.runStatus, j.Step, j.RunID, j.RunStatus, c.wantStep, c.wantStatus, c.newRun)
		}
	}
	// A copy (never uploaded) asked for a new run goes back to the upload.
	cp := store.Job{ID: 2, Status: store.StatusFailed, Step: store.StepRunFinished, RunID: "r", CopyOf: 1}
	if _, err := pipeline.PrepareNewRun(&cp, time.Now()); err != nil || cp.Step != store.StepSettled || cp.CopyOf != 0 {
		t.Errorf("copy: %v, step %s, copy of %d", err, cp.Step, cp.CopyOf)
	}
	open := store.Job{Status: store.StatusActive}
	if _, err := pipeline.PrepareRetry(&open, time.Now()); err == nil {
		t.Error("an active job must not be retried")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

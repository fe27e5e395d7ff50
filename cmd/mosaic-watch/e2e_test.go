package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/sample"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// The end-to-end tests build the real binary and run it as a process against the fake Mosaic
// (served by the test process, on loopback) on temporary folders.

// e2e is one daemon under test with its fake Mosaic and folders.
type e2e struct {
	t      testing.TB
	bin    string
	fake   *mosaictest.Server
	dir    string
	cfg    string
	env    []string
	proc   *exec.Cmd
	logs   *testenv.SyncBuffer
	exited chan error
	// startedBefore counts the "started" log lines before the current start: a start killed
	// early never writes one.
	startedBefore int
	prepare       func(*exec.Cmd) // adjusts the daemon's process (e.g. its user) before it starts
}

const startedLine = `msg="mosaic-watch started"`

type folderSpec struct {
	name, agent string
	extra       string // more YAML lines for the folder, indented by 4
}

func newE2E(t testing.TB, fo mosaictest.Options, folders []folderSpec, extraTop string) *e2e {
	t.Helper()
	bin := daemonBinary(t)
	fake := testenv.StartFake(t, fo)
	e := &e2e{t: t, bin: bin, fake: fake, dir: t.TempDir()}
	e.env = append(os.Environ(), "TEST_MOSAIC_KEY="+mosaictest.DefaultAPIKey)
	var b strings.Builder
	fmt.Fprintf(&b, `mosaic:
  base_url: %s
  api_key: ${TEST_MOSAIC_KEY}
  poll_interval: 100ms
  reconcile_after: 1s
state_dir: ./state
scan_interval: 1h
shutdown_timeout: 10s
retry:
  base: 50ms
  max: 500ms
  attempts: 30
%s
defaults:
  settle: 300ms
folders:
`, fake.URL(), extraTop)
	for _, f := range folders {
		agent := f.agent
		if agent == "" {
			agent = fake.AgentIDs()[0]
		}
		for _, d := range []string{"in/" + f.name, "out/" + f.name} {
			if err := os.MkdirAll(filepath.Join(e.dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&b, "  - name: %s\n    input: ./in/%s\n    output: ./out/%s\n    agent_id: %s\n%s\n",
			f.name, f.name, f.name, agent, f.extra)
	}
	e.cfg = filepath.Join(e.dir, "config.yaml")
	if err := os.WriteFile(e.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if e.proc != nil {
			e.kill()
		}
		if t.Failed() && e.logs != nil {
			t.Logf("daemon log:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *e2e) path(parts ...string) string {
	return filepath.Join(append([]string{e.dir}, parts...)...)
}

func (e *e2e) start() {
	e.t.Helper()
	if e.logs == nil {
		e.logs = &testenv.SyncBuffer{}
	}
	fmt.Fprintf(e.logs, "---- start %s ----\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(e.bin, "run", "--config", e.cfg)
	cmd.Env = e.env
	if e.prepare != nil {
		e.prepare(cmd)
	}
	cmd.Stdout = e.logs
	cmd.Stderr = e.logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.proc = cmd
	e.startedBefore = strings.Count(e.logs.String(), startedLine)
	e.exited = make(chan error, 1)
	go func() { e.exited <- cmd.Wait() }()
}

// stop sends SIGTERM and expects a clean exit 0 within 15 s.
func (e *e2e) stop() {
	e.t.Helper()
	testenv.WaitFor(e.t, 30*time.Second, "the daemon to start", func() bool {
		return strings.Count(e.logs.String(), startedLine) > e.startedBefore
	})
	if err := e.proc.Process.Signal(syscall.SIGTERM); err != nil {
		e.t.Fatal(err)
	}
	select {
	case err := <-e.exited:
		e.proc = nil
		if err != nil {
			e.t.Fatalf("daemon exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		e.t.Fatal("daemon did not stop within 15s of SIGTERM")
	}
}

func (e *e2e) kill() {
	_ = e.proc.Process.Kill()
	<-e.exited
	e.proc = nil
}

// cli runs a one-shot command of the binary and returns its output and exit code.
func (e *e2e) cli(args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return string(out), code
}

// writeFile writes data under in/<rel> as a copy would.
func (e *e2e) writeFile(rel string, data []byte) {
	e.t.Helper()
	testenv.DropFile(e.t, e.path("in", filepath.FromSlash(rel)), data)
}

// waitOutput waits until out/<rel> holds output i of agent's run on src.
func (e *e2e) waitOutput(rel, agent string, src []byte, i int) {
	e.t.Helper()
	p := e.path("out", filepath.FromSlash(rel))
	// An older version's output may be there first: wait for the right content.
	testenv.WaitFor(e.t, 60*time.Second, "output "+rel+" with the expected content", func() bool {
		got, err := os.ReadFile(p)
		if err != nil || len(got) == 0 {
			return false
		}
		return bytes.Equal(got, mosaictest.OutputBytes(agent, testenv.ShaHex(src), i, len(got)))
	})
}

// jobStates reads `status --json` (through the real CLI) and returns status by "folder/path".
func (e *e2e) jobStates() map[string]jobview.Job {
	e.t.Helper()
	out, code := e.cli("status", "--config", e.cfg, "--json", "--all")
	if code != 0 {
		if strings.Contains(out, "start the daemon once") || strings.Contains(out, "no state database") {
			return nil // the daemon is still creating its database
		}
		e.t.Fatalf("status exited %d: %s", code, out)
	}
	var ov jobview.Overview
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &ov); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, out)
	}
	m := make(map[string]jobview.Job)
	for _, list := range [][]jobview.Job{ov.Finished, ov.Failed, ov.Attention, ov.Active} {
		for _, v := range list {
			if _, seen := m[v.Folder+"/"+v.Path]; !seen {
				m[v.Folder+"/"+v.Path] = v
			}
		}
	}
	return m
}

func (e *e2e) waitState(key string, want string) jobview.Job {
	e.t.Helper()
	var v jobview.Job
	testenv.WaitFor(e.t, 60*time.Second, key+" to be "+want, func() bool {
		v = e.jobStates()[key]
		return string(v.Status) == want
	})
	return v
}

func (e *e2e) runs(src []byte, agent string) int {
	return e.fake.Stats().RunsByContent[mosaictest.RunKey{ContentSHA256: testenv.ShaHex(src),
		AgentID: agent}]
}

func TestE2ENestedUnicodeIgnoredAndUploadedOnce(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	agent := e.fake.AgentIDs()[0]
	e.start()
	a, b := testenv.Clip("a"), testenv.Clip("b")
	e.writeFile("main/a/b/c/日本語 ファイル.mov", a)
	e.writeFile("main/Caf\u0065\u0301/clip one.MP4", b) // NFD name with a space
	os.WriteFile(e.path("in/main/.hidden.mp4"), testenv.Clip("h"), 0o644)
	os.WriteFile(e.path("in/main/notes.txt"), []byte("not a video"), 0o644)
	os.WriteFile(e.path("in/main/copying.mp4.part"), testenv.Clip("p"), 0o644)
	os.WriteFile(e.path("in/main/Thumbs.db"), []byte("x"), 0o644)
	e.waitOutput("main/a/b/c/日本語 ファイル.mp4", agent, a, 0)
	e.waitOutput("main/Caf\u0065\u0301/clip one.mp4", agent, b, 0)
	e.stop()
	st := e.fake.Stats()
	if st.UploadURLsIssued != 2 || st.StoragePosts != 2 || st.RunsCreated != 2 {
		t.Fatalf("want exactly 2 upload URLs, 2 storage POSTs, 2 runs; got %d, %d, %d",
			st.UploadURLsIssued, st.StoragePosts, st.RunsCreated)
	}
}

func TestE2ESlowWriterUploadedOnceWhole(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	agent := e.fake.AgentIDs()[0]
	e.start()
	src := sample.MP4(1000, 640, 360, bytes.Repeat([]byte("slow writer "), 40000))
	p := e.path("in/main/slow.mp4")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	// Chunks every 150 ms for well over the 300 ms settle window.
	chunk := len(src)/8 + 1
	for off := 0; off < len(src); off += chunk {
		if _, err := f.Write(src[off:min(off+chunk, len(src))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond) // the writer's pace, not a wait for an outcome
	}
	f.Close()
	e.waitOutput("main/slow.mp4", agent, src, 0)
	e.stop()
	if n := e.runs(src, agent); n != 1 {
		t.Fatalf("runs on the whole file: %d, want 1", n)
	}
	if st := e.fake.Stats(); st.StoragePosts != 1 || st.RunsCreated != 1 {
		t.Fatalf("want one upload and one run, got %d uploads, %d runs", st.StoragePosts, st.RunsCreated)
	}
}

func TestE2ERestartsRenamesAndChanges(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	agent := e.fake.AgentIDs()[0]
	// Dropped while the daemon is stopped: processed after start.
	early := testenv.Clip("dropped while stopped")
	e.writeFile("main/early.mov", early)
	e.start()
	e.waitOutput("main/early.mp4", agent, early, 0)
	e.stop()

	// Restart: nothing is run again.
	e.start()
	marker := testenv.Clip("marker")
	e.writeFile("main/marker.mov", marker)
	e.waitOutput("main/marker.mp4", agent, marker, 0)
	if n := e.runs(early, agent); n != 1 {
		t.Fatalf("early file ran %d times after a restart", n)
	}

	// A processed file renamed within its folder is recognised by content: its new mirror path
	// gets the outputs without a run.
	if err := os.Rename(e.path("in/main/early.mov"), e.path("in/main/renamed.mov")); err != nil {
		t.Fatal(err)
	}
	v := e.waitState("main/renamed.mov", "done")
	if !strings.Contains(v.Note, "outputs from job") {
		t.Fatalf("renamed file note: %q", v.Note)
	}
	e.waitOutput("main/renamed.mp4", agent, early, 0)
	if n := e.runs(early, agent); n != 1 {
		t.Fatalf("renamed file ran again (%d runs)", n)
	}

	// A changed file (new content at the same path) is processed again.
	changed := testenv.Clip("marker, second cut")
	e.writeFile("main/marker.mov", changed)
	e.waitOutput("main/marker.mp4", agent, changed, 0)
	e.stop()
	if e.runs(changed, agent) != 1 || e.runs(marker, agent) != 1 {
		t.Fatal("changed file: want one run per version")
	}
}

func TestE2ERunOutcomesAndSourceHandling(t *testing.T) {
	fo := mosaictest.Options{Agents: []mosaictest.AgentSpec{
		{Name: "ok"},
		{Name: "partial", Outputs: 3, Outcome: mosaictest.OutcomePartial},
		{Name: "failing", Outcome: mosaictest.OutcomeFailed},
		{Name: "broke", Outcome: mosaictest.OutcomeNeedsCredits},
	}}
	e := newE2E(t, fo, nil, "")
	ids := e.fake.AgentIDs()
	e = newE2EWith(t, e, []folderSpec{
		{name: "move", agent: ids[0],
			extra: "    after_success: move\n    after_success_move_to: ./done/move"},
		{name: "delete", agent: ids[0], extra: "    after_success: delete"},
		{name: "partial", agent: ids[1]},
		{name: "failing", agent: ids[2],
			extra: "    after_failure: move\n    after_failure_move_to: ./failed"},
		{name: "broke", agent: ids[3]},
	})
	e.start()
	srcs := map[string][]byte{}
	for _, n := range []string{"move", "delete", "partial", "failing", "broke"} {
		srcs[n] = testenv.Clip(n)
		e.writeFile(n+"/sub/"+n+".mov", srcs[n])
	}
	e.waitOutput("move/sub/move.mp4", ids[0], srcs["move"], 0)
	e.waitState("move/sub/move.mov", "done")
	if _, err := os.Stat(e.path("done/move/sub/move.mov")); err != nil {
		t.Fatalf("after_success: move: %v", err)
	}
	e.waitOutput("delete/sub/delete.mp4", ids[0], srcs["delete"], 0)
	e.waitState("delete/sub/delete.mov", "done")
	if _, err := os.Stat(e.path("in/delete/sub/delete.mov")); !os.IsNotExist(err) {
		t.Fatal("after_success: delete left the source")
	}
	v := e.waitState("partial/sub/partial.mov", "done")
	if !strings.Contains(v.Error, "partial_complete") {
		t.Fatalf("partial run should record its errors, got %q", v.Error)
	}
	e.waitOutput("partial/sub/partial-1.mp4", ids[1], srcs["partial"], 0)
	e.waitOutput("partial/sub/partial-2.mp4", ids[1], srcs["partial"], 1)
	v = e.waitState("failing/sub/failing.mov", "failed")
	if !strings.Contains(v.Error, "failed") {
		t.Fatalf("failed run reason: %q", v.Error)
	}
	if _, err := os.Stat(e.path("failed/sub/failing.mov")); err != nil {
		t.Fatalf("after_failure: move: %v", err)
	}
	v = e.waitState("broke/sub/broke.mov", "attention")
	if !strings.Contains(v.Error, "credits") {
		t.Fatalf("needs_credits reason: %q", v.Error)
	}
	e.stop()
	if e.runs(srcs["failing"], ids[2]) != 1 {
		t.Fatal("a failed run must not be re-run automatically")
	}
	out, code := e.cli("retry", "--config", e.cfg, "--failed")
	if code != 0 || !strings.Contains(out, "2 job(s) queued again") ||
		strings.Count(out, "resuming run") != 2 {
		t.Fatalf("retry --failed: %d %s", code, out)
	}
	// Both runs are resumed on Mosaic, none is started anew: the credit-blocked one completes,
	// the failing one fails again.
	e.start()
	e.waitState("broke/sub/broke.mov", "done")
	e.waitState("failing/sub/failing.mov", "failed")
	e.stop()
	if st := e.fake.Stats(); st.Resumes != 2 || e.runs(srcs["failing"], ids[2]) != 1 ||
		e.runs(srcs["broke"], ids[3]) != 1 {
		t.Fatalf("after retry: %d resumes, runs %d and %d; want 2 resumes and no new run",
			st.Resumes, e.runs(srcs["failing"], ids[2]), e.runs(srcs["broke"], ids[3]))
	}
}

// newE2EWith rewrites e's config with folders (agents must exist first).
func newE2EWith(t testing.TB, e *e2e, folders []folderSpec) *e2e {
	t.Helper()
	var b strings.Builder
	old, _ := os.ReadFile(e.cfg)
	b.Write(old)
	for _, f := range folders {
		for _, d := range []string{"in/" + f.name, "out/" + f.name} {
			if err := os.MkdirAll(e.path(d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&b, "  - name: %s\n    input: ./in/%s\n    output: ./out/%s\n    agent_id: %s\n%s\n",
			f.name, f.name, f.name, f.agent, f.extra)
	}
	if err := os.WriteFile(e.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestE2EBadInputsEndInAClearState(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	e.start()
	os.WriteFile(e.path("in/main/empty.mp4"), nil, 0o644)
	os.WriteFile(e.path("in/main/text.mkv"), []byte("just some notes, definitely not matroska"), 0o644)
	v := e.waitState("main/text.mkv", "failed")
	if !strings.Contains(v.Error, "not a video") {
		t.Fatalf("not a video: %q", v.Error)
	}
	v = e.waitState("main/empty.mp4", "attention")
	if !strings.Contains(v.Error, "empty") {
		t.Fatalf("zero-byte: %q", v.Error)
	}
	e.stop()
	for _, name := range []string{"empty.mp4", "text.mkv"} {
		if _, err := os.Stat(e.path("in/main", name)); err != nil {
			t.Fatalf("%s was lost: %v", name, err)
		}
	}
	if e.fake.Stats().StoragePosts != 0 {
		t.Fatal("a bad input was uploaded")
	}
}

func TestE2EBadConfigsExit2Quickly(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	good, _ := os.ReadFile(e.cfg)
	cases := map[string]struct{ text, want string }{
		"unknown key": {strings.Replace(string(good), "poll_interval:", "pol_interval:", 1),
			"mosaic.pol_interval"},
		"missing agent": {string(good) + "  - input: ./in/main2\n    output: ./out/main2\n",
			"folders[1]"},
		"output inside": {string(good) + "  - input: ./in/x\n    output: ./in/x/out\n    agent_id: a\n",
			"folders[1]"},
		"same input": {string(good) + "  - input: ./in/main\n    output: ./out/other\n    " +
			"agent_id: a\n", "folders[1]"},
		"yaml syntax": {string(good) + "  - input: [unclosed\n", ":"},
		"wrong duration": {strings.Replace(string(good), "settle: 300ms", "settle: soon", 1),
			"defaults.settle"},
	}
	os.MkdirAll(e.path("in/x"), 0o755)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := e.path("bad-" + strings.ReplaceAll(name, " ", "-") + ".yaml")
			os.WriteFile(p, []byte(c.text), 0o600)
			for _, cmd := range []string{"validate", "run"} {
				start := time.Now()
				out, code := e.cli(cmd, "--config", p)
				if code != 2 || !strings.Contains(out, c.want) {
					t.Fatalf("%s: exit %d, want 2 with %q in:\n%s", cmd, code, c.want, out)
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("%s took %s to refuse a bad config", cmd, d)
				}
			}
		})
	}
}

func TestE2EDemo(t *testing.T) {
	bin := daemonBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--dir", dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "bytes match what the fake rendered") ||
		strings.Contains(string(out), "UNEXPECTED") {
		t.Fatalf("demo output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "outbox/interviews/day 1-1.mp4")); err != nil {
		t.Fatalf("demo output file missing: %v\n%s", err, out)
	}
}

func TestE2EChangedOrDeletedDuringUpload(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	agent := e.fake.AgentIDs()[0]
	// Each storage POST is held for a while, so the file can change while it is "uploading".
	e.fake.InjectFault(mosaictest.RouteStorage,
		mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: 2 * time.Second, Count: 2})
	e.start()
	doomed := testenv.Clip("deleted mid-upload")
	first := testenv.Clip("changed mid-upload, first version")
	e.writeFile("main/doomed.mp4", doomed)
	e.writeFile("main/changing.mp4", first)
	testenv.WaitFor(t, 30*time.Second, "both uploads to start", func() bool {
		logs := e.logs.String()
		return strings.Contains(logs, `path=doomed.mp4`) && strings.Contains(logs, `path=changing.mp4`) &&
			strings.Count(logs, "msg=uploading") >= 2
	})
	os.Remove(e.path("in/main/doomed.mp4"))
	second := testenv.Clip("changed mid-upload, second version")
	e.writeFile("main/changing.mp4", second)

	v := e.waitState("main/doomed.mp4", "skipped")
	if !strings.Contains(v.Note, "disappeared") {
		t.Fatalf("deleted mid-upload: %q", v.Note)
	}
	e.waitOutput("main/changing.mp4", agent, second, 0)
	e.stop()
	if e.runs(first, agent) != 0 || e.runs(doomed, agent) != 0 {
		t.Fatal("a run was started for content that no longer exists")
	}
	if e.runs(second, agent) != 1 {
		t.Fatalf("the settled new version ran %d times, want 1", e.runs(second, agent))
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/httpapi"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// The end-to-end tests of issue 13: live reload, explain, plan, the backlog and run limits,
// with the built binary against the fake.

// saveConfig replaces the configuration the way editors save: a new file renamed over it.
func (e *e2e) saveConfig(body string) {
	e.t.Helper()
	tmp := e.path(".config.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfg); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2e) config() string {
	e.t.Helper()
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// folderYAML is a folder entry as newE2E writes them; its folders are created.
func (e *e2e) folderYAML(name, agent, extra string) string {
	e.t.Helper()
	for _, d := range []string{"in/" + name, "out/" + name} {
		if err := os.MkdirAll(e.path(d), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	return fmt.Sprintf("  - name: %s\n    input: ./in/%s\n    output: ./out/%s\n"+
		"    agent_id: %s\n%s\n", name, name, name, agent, extra)
}

// waitLog waits until the daemon's log holds want.
func (e *e2e) waitLog(want string) {
	e.t.Helper()
	testenv.WaitFor(e.t, 30*time.Second, "log line "+strconv.Quote(want), func() bool {
		return strings.Contains(e.logs.String(), want)
	})
}

func healthz(t *testing.T, addr string) (int, httpapi.HealthReport) {
	t.Helper()
	code, body, _ := testenv.HTTPDo(t, "GET", "http://"+addr+"/healthz", nil)
	var rep httpapi.HealthReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("healthz %d: %s", code, body)
	}
	return code, rep
}

func lineOf(text, needle string) int {
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, needle) {
			return i + 1
		}
	}
	return 0
}

func TestE2EReloadAddsAFolderAndKeepsTheOldConfigOnABadEdit(t *testing.T) {
	addr := testenv.FreePort(t)
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "http:\n  listen: "+addr)
	agent := e.fake.AgentIDs()[0]
	e.start()
	e.waitLog(startedLine)

	// Add a folder by rewriting the file atomically: a file dropped there is processed.
	good := e.config() + e.folderYAML("social", agent, "")
	e.saveConfig(good)
	e.waitLog("config reloaded: +folder social")
	social := testenv.Clip("social")
	e.writeFile("social/clip.mov", social)
	e.waitOutput("social/clip.mp4", agent, social, 0)

	// An invalid edit: the old configuration keeps working, /healthz names file and line.
	bad := strings.Replace(good, "settle: 300ms", "settle: soon", 1)
	e.saveConfig(bad)
	var rep httpapi.HealthReport
	testenv.WaitFor(t, 30*time.Second, "/healthz to report the failed reload", func() bool {
		var code int
		code, rep = healthz(t, addr)
		return code == http.StatusServiceUnavailable
	})
	want := fmt.Sprintf("%s:%d: defaults.settle:", e.cfg, lineOf(bad, "settle: soon"))
	if got := strings.Join(rep.Reasons, "\n"); !strings.Contains(got, "config reload failed") ||
		!strings.Contains(got, want) {
		t.Fatalf("healthz reasons:\n%s\nwant the reload error at %s", got, want)
	}
	still := testenv.Clip("old folder, bad edit")
	e.writeFile("main/still.mov", still)
	e.waitOutput("main/still.mp4", agent, still, 0)
	out, code := e.cli("status", "--config", e.cfg)
	if code != 2 || !strings.Contains(out, "The last configuration reload failed") ||
		!strings.Contains(out, want) || !strings.Contains(out, "social") {
		t.Fatalf("status with a bad file: exit %d\n%s", code, out)
	}

	// Fixed: the error clears. SIGHUP reloads even when the file did not change.
	e.saveConfig(good)
	testenv.WaitFor(t, 30*time.Second, "/healthz to be ok again", func() bool {
		code, _ := healthz(t, addr)
		return code == http.StatusOK
	})
	if err := e.proc.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitLog(`msg="config reloaded: no changes" trigger=SIGHUP`)
	out, code = e.cli("status", "--config", e.cfg)
	if code != 0 || strings.Contains(out, "reload failed") {
		t.Fatalf("status after the fix: exit %d\n%s", code, out)
	}
	e.stop()
}

func TestE2ERemovingAFolderDuringARunStillWritesItsOutputs(t *testing.T) {
	slow := 3 * time.Second
	e := newE2E(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{Name: "fast"},
		{Name: "slow", RunDuration: &slow}}}, []folderSpec{{name: "main"}}, "")
	ids := e.fake.AgentIDs()
	withSlow := e.config() + e.folderYAML("slow", ids[1], "")
	if err := os.WriteFile(e.cfg, []byte(withSlow), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	src := testenv.Clip("billed run")
	e.writeFile("slow/run.mov", src)
	testenv.WaitFor(t, 30*time.Second, "the run to start", func() bool {
		v := e.jobStates()["slow/run.mov"]
		return v.RunID != ""
	})
	without := strings.Replace(withSlow, e.folderYAML("slow", ids[1], ""), "", 1)
	if err := os.WriteFile(e.cfg, []byte(without), 0o600); err != nil { // a plain write this time
		t.Fatal(err)
	}
	if err := e.proc.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitLog("config reloaded: -folder slow")
	e.waitOutput("slow/run.mp4", ids[1], src, 0)
	// The removed folder takes no new file.
	e.writeFile("slow/late.mov", testenv.Clip("late"))
	marker := testenv.Clip("marker")
	e.writeFile("main/marker.mov", marker)
	e.waitOutput("main/marker.mp4", ids[0], marker, 0)
	e.stop()
	if n := e.runs(testenv.Clip("late"), ids[1]); n != 0 {
		t.Fatalf("a removed folder's new file ran %d times", n)
	}
	if n := e.runs(src, ids[1]); n != 1 {
		t.Fatalf("the billed run ran %d times", n)
	}
}

func TestE2EExplainNamesTheDecidingRule(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{
		{name: "main", extra: `    exclude: ["**/proxies/**"]`},
		{name: "slow", extra: "    settle: 1h"},
	}, "")
	agent := e.fake.AgentIDs()[0]
	e.start()
	done := testenv.Clip("done")
	e.writeFile("main/done.mov", done)
	e.waitOutput("main/done.mp4", agent, done, 0)
	for rel, data := range map[string][]byte{
		"main/.hidden.mp4": testenv.Clip("h"), "main/copy.mp4.part": testenv.Clip("p"),
		"main/proxies/p.mp4": testenv.Clip("x"), "main/notes.txt": []byte("notes"),
		"slow/settling.mp4": testenv.Clip("s"),
	} {
		p := e.path("in", filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct{ path, reason, rule, next string }{
		{"in/main/.hidden.mp4", "hidden", `built-in ".*"`, "never picked up"},
		{"in/main/copy.mp4.part", "partial download", `built-in "*.part"`, "never picked up"},
		{"in/main/proxies/p.mp4", "excluded", `exclude "**/proxies/**"`, "never picked up"},
		{"in/main/notes.txt", "not a video type", "", "never picked up"},
		{"in/slow/settling.mp4", "included", "", "still settling"},
		{"in/main/done.mov", "included", `include "**/*.mov"`, "processed (job #"},
		{"out/main/done.mp4", "", "", "inside no configured input folder"},
	}
	for _, c := range cases {
		out, code := e.cli("explain", "--config", e.cfg, "--json", e.path(c.path))
		if code != 0 {
			t.Fatalf("explain %s: exit %d\n%s", c.path, code, out)
		}
		var ex struct {
			Folder string
			Rule   *struct{ Reason, Rule string }
			Jobs   []struct{ Status string }
			Next   string
		}
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &ex); err != nil {
			t.Fatalf("explain %s: %v\n%s", c.path, err, out)
		}
		if c.reason == "" {
			if ex.Folder != "" || ex.Rule != nil || !strings.Contains(ex.Next, c.next) {
				t.Errorf("explain %s: %s", c.path, out)
			}
			continue
		}
		if ex.Rule == nil || ex.Rule.Reason != c.reason || (c.rule != "" && ex.Rule.Rule != c.rule) ||
			!strings.Contains(ex.Next, c.next) {
			t.Errorf("explain %s: want %s by %s, next %q; got\n%s", c.path, c.reason, c.rule, c.next, out)
		}
	}
	// People read the text form.
	out, _ := e.cli("explain", "--config", e.cfg, e.path("in/main/done.mov"))
	for _, want := range []string{"folder:    main", "history:", "run started", "done"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain text lacks %q:\n%s", want, out)
		}
	}
	e.stop()
	// And without the daemon.
	if out, code := e.cli("explain", "--config", e.cfg, e.path("in/main/.hidden.mp4")); code != 0 ||
		!strings.Contains(out, "hidden") {
		t.Fatalf("explain without the daemon: exit %d\n%s", code, out)
	}
}

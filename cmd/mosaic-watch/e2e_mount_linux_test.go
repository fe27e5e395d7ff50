package main

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// mountTmpfs mounts a fresh tmpfs on dir (under the test's temporary folder) and detaches
// whatever is still mounted there when the test ends. Skips unless run as root.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; run the tests as root to cover unmounted shares")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64m,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		for syscall.Unmount(dir, syscall.MNT_DETACH) == nil {
		}
	})
}

func unmountLazily(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		t.Fatalf("unmount %s: %v", dir, err)
	}
}

// degraded reads `status --json` and returns why folder name is degraded ("" = it is not).
func (e *e2e) degraded(name string) string {
	e.t.Helper()
	out, code := e.cli("status", "--config", e.cfg, "--json")
	if code != 0 {
		return ""
	}
	var ov jobview.Overview
	if i := strings.Index(out, "{"); i < 0 || json.Unmarshal([]byte(out[i:]), &ov) != nil {
		return ""
	}
	return ov.Degraded[name]
}

// Reproduction 2 with the real daemon: the output share is unmounted during the run. Nothing
// is written into the bare mount point, the source stays, status shows the folder degraded;
// after a fresh mount at the same place the output is written there and the source is then
// deleted as configured.
func TestE2EOutputUnmountedDuringARun(t *testing.T) {
	e := newE2E(t, mosaictest.Options{ManualRuns: true},
		[]folderSpec{{name: "main", extra: "    after_success: delete"}}, "")
	agent := e.fake.AgentIDs()[0]
	out := e.path("out/main")
	mountTmpfs(t, out)
	e.start()
	src := testenv.Clip("output share goes away")
	e.writeFile("main/clip.mov", src)
	testenv.WaitFor(t, 60*time.Second, "the run to start", func() bool {
		return len(e.fake.Runs()) == 1
	})
	unmountLazily(t, out)
	if err := e.fake.FinishRun(e.fake.Runs()[0].ID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	var why string
	testenv.WaitFor(t, 60*time.Second, "status to show the folder degraded", func() bool {
		why = e.degraded("main")
		return why != ""
	})
	if !strings.Contains(why, out) {
		t.Errorf("degraded reason %q does not name the output folder", why)
	}
	if v := e.jobStates()["main/clip.mov"]; v.Status != "active" {
		t.Fatalf("job is %s (%s %s) while its output folder is away", v.Status, v.Error, v.Note)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("%d file(s) written into the bare mount point", len(entries))
	}
	if _, err := os.Stat(e.path("in/main/clip.mov")); err != nil {
		t.Fatalf("the source must stay: %v", err)
	}

	mountTmpfs(t, out)
	e.waitOutput("main/clip.mp4", agent, src, 0)
	e.waitState("main/clip.mov", "done")
	if _, err := os.Stat(e.path("in/main/clip.mov")); !os.IsNotExist(err) {
		t.Fatalf("after_success: delete was not applied after the remount (%v)", err)
	}
	testenv.WaitFor(t, 30*time.Second, "the folder to be healthy", func() bool {
		return e.degraded("main") == ""
	})
	e.stop()
	if n := e.runs(src, agent); n != 1 {
		t.Fatalf("%d runs", n)
	}
}

// Reproduction 3 with the real daemon: the input share goes away during an upload. The file
// is not skipped; once the share is back the file completes, with one run.
func TestE2EInputUnmountedDuringAnUpload(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	agent := e.fake.AgentIDs()[0]
	in := e.path("in/main")
	mountTmpfs(t, in)
	e.fake.InjectFault(mosaictest.RouteStorage,
		mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: 2 * time.Second, Count: 1})
	e.start()
	src := testenv.Clip("input share goes away")
	e.writeFile("main/clip.mov", src)
	fi, err := os.Stat(e.path("in/main/clip.mov"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "the upload to start", func() bool {
		return strings.Contains(e.logs.String(), "msg=uploading")
	})
	unmountLazily(t, in) // lazily: the upload holds the file open
	testenv.WaitFor(t, 60*time.Second, "status to show the folder degraded", func() bool {
		return e.degraded("main") != ""
	})
	if v := e.jobStates()["main/clip.mov"]; v.Status == "skipped" {
		t.Fatalf("the file was skipped while its share was away: %s", v.Note)
	}

	mountTmpfs(t, in)
	p := e.path("in/main/clip.mov")
	if err := os.WriteFile(p, src, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	e.waitOutput("main/clip.mp4", agent, src, 0)
	e.waitState("main/clip.mov", "done")
	e.stop()
	if n := e.runs(src, agent); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}

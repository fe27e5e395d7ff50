package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/httpapi"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

// saveConfig replaces the configuration file the way editors save: a new file renamed over it.
func (e *httpEnv) saveConfig(body string) {
	e.t.Helper()
	tmp := filepath.Join(e.dir, ".config.yaml.swp")
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfg.File); err != nil {
		e.t.Fatal(err)
	}
}

func (e *httpEnv) health() (int, httpapi.HealthReport) {
	e.t.Helper()
	code, body, _ := e.do("GET", "/healthz", nil)
	var rep httpapi.HealthReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		e.t.Fatalf("healthz %d: %s", code, body)
	}
	return code, rep
}

func TestReloadOnFileChangeAddsFoldersAndKeepsAGoodConfig(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "")
	original, err := os.ReadFile(e.cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"in/second", "out/second"} {
		os.MkdirAll(filepath.Join(e.dir, d), 0o755)
	}
	withSecond := string(original) +
		"  - name: second\n    input: ./in/second\n    output: ./out/second\n" +
		"    agent_id: " + e.fake.AgentIDs()[0] + "\n    settle: 200ms\n"
	e.saveConfig(withSecond)
	testenv.WaitFor(t, 20*time.Second, "the reload", func() bool {
		return strings.Contains(e.logs.String(), "config reloaded: +folder second")
	})
	testenv.DropFile(t, filepath.Join(e.dir, "in", "second", "new.mp4"), testenv.Clip("second folder"))
	testenv.WaitFor(t, 30*time.Second, "the new folder's file to be done", func() bool {
		for _, v := range e.jobs("?folder=second") {
			if v.Path == "new.mp4" && v.Status == "done" {
				return true
			}
		}
		return false
	})

	// A broken edit changes nothing and is reported with file and line until it is fixed.
	broken := strings.Replace(withSecond, "settle: 200ms", "settle: soon", 1)
	e.saveConfig(broken)
	var rep httpapi.HealthReport
	testenv.WaitFor(t, 20*time.Second, "/healthz to report the failed reload", func() bool {
		var code int
		code, rep = e.health()
		return code == http.StatusServiceUnavailable && len(rep.Reasons) > 0
	})
	line := 0
	for i, l := range strings.Split(broken, "\n") {
		if strings.Contains(l, "settle: soon") {
			line = i + 1
		}
	}
	want := e.cfg.File + ":" + strconv.Itoa(line) + ": folders[1].settle:"
	if !strings.Contains(strings.Join(rep.Reasons, "\n"), "config reload failed") ||
		!strings.Contains(strings.Join(rep.Reasons, "\n"), want) {
		t.Fatalf("healthz reasons %q, want the reload error at %s", rep.Reasons, want)
	}
	got, _ := e.d.store.GetMeta(context.Background(), ReloadErrorKey)
	if !strings.Contains(got, "settle") {
		t.Fatalf("the failed reload is not recorded for status: %q", got)
	}
	if _, page, _ := e.do("GET", "/", nil); !strings.Contains(page, "config reload failed") {
		t.Error("the dashboard's banner does not show the failed reload")
	}
	e.writeClip("still.mp4", "old folder after a bad edit")
	e.waitJob("still.mp4", "done")

	// SIGHUP's path (Reload) with the file fixed clears the error.
	if err := os.WriteFile(e.cfg.File, original, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if code, rep := e.health(); code != http.StatusOK {
		t.Fatalf("healthz after a good reload: %d %q", code, rep.Reasons)
	}
	if !strings.Contains(e.logs.String(), "config reloaded: -folder second") {
		t.Fatal("the removal was not logged as the difference")
	}
	if got, _ := e.d.store.GetMeta(context.Background(), ReloadErrorKey); got != "" {
		t.Fatalf("the failed reload is still recorded: %q", got)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A folder added by a reload is locked like the folders of the start (a second instance on it
// is refused); one another instance serves is not served and is tried again at the next reload;
// a folder removed by a reload is free for another instance at once.
func TestReloadTakesAndReleasesInputLocks(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "")
	original := readFile(t, e.cfg.File)
	for _, d := range []string{"in/second", "out/second", "in/third", "out/third"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	third := filepath.Join(e.dir, "in", "third")
	other, err := pipeline.LockFolder(third, pipeline.LockHolder{Host: "nas-box", PID: 4242})
	if err != nil {
		t.Fatal(err)
	}
	folder := func(name string) string {
		return "  - name: " + name + "\n    input: ./in/" + name + "\n    output: ./out/" + name +
			"\n    agent_id: " + e.fake.AgentIDs()[0] + "\n    settle: 200ms\n"
	}
	if err := os.WriteFile(e.cfg.File, []byte(original+folder("second")+folder("third")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Reload(context.Background(), "test"); err != nil {
		t.Fatalf("a reload adding a folder another instance serves: %v", err)
	}
	second := filepath.Join(e.dir, "in", "second")
	var le *pipeline.LockedError
	if l, err := pipeline.LockFolder(second, pipeline.LockHolder{PID: 1}); !errors.As(err, &le) ||
		le.Holder.PID != os.Getpid() {
		if l != nil {
			l.Close()
		}
		t.Fatalf("the added folder's lock: %v, want held by this process", err)
	}
	if why := e.d.folderHealth()[third]; !strings.Contains(why, "PID 4242 on nas-box") {
		t.Fatalf("the folder another instance serves: health %q", why)
	}
	testenv.DropFile(t, filepath.Join(third, "theirs.mp4"), testenv.Clip("not ours"))
	testenv.DropFile(t, filepath.Join(second, "ours.mp4"), testenv.Clip("ours"))
	testenv.WaitFor(t, 30*time.Second, "the added folder's file", func() bool {
		for _, v := range e.jobs("?folder=second") {
			if v.Path == "ours.mp4" && v.Status == "done" {
				return true
			}
		}
		return false
	})
	if jobs := e.jobs("?folder=third"); len(jobs) != 0 {
		t.Fatalf("a folder another instance serves got jobs here: %+v", jobs)
	}

	// The other instance leaves: the next reload serves the folder.
	other.Close()
	if err := e.d.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the freed folder's file", func() bool {
		for _, v := range e.jobs("?folder=third") {
			if v.Path == "theirs.mp4" && v.Status == "done" {
				return true
			}
		}
		return false
	})

	// Removing the folders frees their inputs for another instance.
	if err := os.WriteFile(e.cfg.File, []byte(original), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{second, third} {
		l, err := pipeline.LockFolder(in, pipeline.LockHolder{Host: "nas-box", PID: 4242})
		if err != nil {
			t.Fatalf("a folder removed by a reload is still locked: %v", err)
		}
		l.Close()
	}
}

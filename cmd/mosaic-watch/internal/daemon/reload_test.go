package daemon

import (
	"context"
	"encoding/json"
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

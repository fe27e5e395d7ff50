package pipeline_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// twoVersions starts runs for two versions of clip.mov (v1, then v2) and leaves both running.
func twoVersions(t *testing.T, h *harness) (v1, v2 []byte, j1, j2 store.Job) {
	t.Helper()
	v1 = video("version one")
	h.drop("clip.mov", v1)
	j1 = h.waitJob("clip.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	v2 = video("version two, longer")
	p := filepath.Join(h.folder.Input, "clip.mov")
	if err := os.WriteFile(p, v2, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(p, later, later)
	if err := h.p.FileReady(t.Context(), h.fileOf("clip.mov")); err != nil {
		t.Fatal(err)
	}
	j2 = h.waitJob("clip.mov", func(j store.Job) bool { return j.ID != j1.ID && j.Step == store.StepRunStarted })
	return v1, v2, j1, j2
}

func (h *harness) waitID(id int64, cond func(*store.Job) bool) *store.Job {
	h.t.Helper()
	var j *store.Job
	waitUntil(h.t, "job state", func() bool {
		var err error
		j, err = h.st.Get(h.t.Context(), id)
		return err == nil && cond(j)
	})
	return j
}

func closed(j *store.Job) bool { return !j.Status.Open() }

// historyHas reports whether job id's history has a line containing substr.
func historyHas(t *testing.T, st store.Store, id int64, substr string) bool {
	t.Helper()
	ev, err := st.History(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev {
		if strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

// Reproduction (6): while the old version's job downloads into clip.mp4's temporary file, the
// new version must not be named clip.mov.mp4 (and then lose clip.mp4 to the old version).
func TestNewVersionWaitsForTheOldVersionsDownload(t *testing.T) {
	h := newHarness(t, harnessOpts{
		fake:    func(o *mosaictest.Options) { o.ManualRuns = true },
		options: nil,
	})
	_, v2, j1, j2 := twoVersions(t, h)
	h.fake.InjectFault(mosaictest.RouteDownload, mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: time.Second, Count: 1})
	if err := h.fake.FinishRun(j1.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the old version's download", func() bool {
		_, err := os.Stat(filepath.Join(h.folder.Output, ".clip.mp4.mosaic-partial"))
		return err == nil
	})
	if err := h.fake.FinishRun(j2.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	h.waitID(j1.ID, closed)
	if j := h.waitID(j2.ID, closed); j.Status != store.StatusDone {
		t.Fatalf("new version: %s %s", j.Status, j.LastError)
	}
	if _, err := os.Stat(filepath.Join(h.folder.Output, "clip.mov.mp4")); err == nil {
		t.Fatal("the new version was given the stale name clip.mov.mp4")
	}
	h.checkOutputs(h.folder.AgentID, v2, "clip.mp4")
}

// An old version whose run ends after the new version's outputs were written never replaces
// them: it is superseded.
func TestOldVersionNeverReplacesNewerOutputs(t *testing.T) {
	h := newHarness(t, harnessOpts{fake: func(o *mosaictest.Options) { o.ManualRuns = true }})
	_, v2, j1, j2 := twoVersions(t, h)
	if err := h.fake.FinishRun(j2.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	if j := h.waitID(j2.ID, closed); j.Status != store.StatusDone {
		t.Fatalf("new version: %s %s", j.Status, j.LastError)
	}
	if err := h.fake.FinishRun(j1.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	j := h.waitID(j1.ID, closed)
	if j.Status != store.StatusSkipped || !strings.Contains(j.Note, "newer version") {
		t.Fatalf("old version: %s %q %q; want skipped as superseded", j.Status, j.LastError, j.Note)
	}
	if _, err := os.Stat(filepath.Join(h.folder.Output, "clip.mov.mp4")); err == nil {
		t.Fatal("the old version was written under another name")
	}
	h.checkOutputs(h.folder.AgentID, v2, "clip.mp4")
}

// An editor replaces an output with their own file (say, a graded version under the same
// name); then the source changes. The new version's output must not overwrite the editor's
// file: mosaic-watch did not write it, even though an older version wrote that name once.
func TestReplacedOutputIsNotOverwrittenByANewVersion(t *testing.T) {
	for _, how := range []string{"replaced", "rewritten in place"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			v1 := video("version one")
			h.drop("cut.mov", v1)
			if j := h.waitClosed("cut.mov"); j.Status != store.StatusDone {
				t.Fatalf("v1: %s %q", j.Status, j.LastError)
			}
			out := filepath.Join(h.folder.Output, "cut.mp4")
			edit := []byte("the editor's graded version of the render")
			if how == "replaced" {
				tmp := filepath.Join(h.folder.Output, ".cut.mp4.tmp")
				if err := os.WriteFile(tmp, edit, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, out); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(out, edit, 0o644); err != nil {
				t.Fatal(err)
			}

			v2 := video("version two, longer")
			p := filepath.Join(h.folder.Input, "cut.mov")
			if err := os.WriteFile(p, v2, 0o644); err != nil {
				t.Fatal(err)
			}
			later := time.Now().Add(2 * time.Second)
			os.Chtimes(p, later, later)
			if err := h.p.FileReady(t.Context(), h.fileOf("cut.mov")); err != nil {
				t.Fatal(err)
			}
			j := h.waitJob("cut.mov", func(j store.Job) bool { return j.Size == int64(len(v2)) && !j.Status.Open() })
			if got, _ := os.ReadFile(out); !bytes.Equal(got, edit) {
				t.Fatalf("the editor's file %s was overwritten by the new version's output", out)
			}
			if j.Status != store.StatusDone {
				t.Fatalf("v2: %s %q", j.Status, j.LastError)
			}
			h.checkOutputs(h.folder.AgentID, v2, "cut.mov.mp4") // beside it, as for any foreign file
		})
	}
}

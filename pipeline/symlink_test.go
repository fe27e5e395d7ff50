//go:build unix

package pipeline_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// plantVictim writes a file outside the input folder with the same name, size and mtime as
// the source, and returns its content.
func plantVictim(t *testing.T, dir, name string, like os.FileInfo) []byte {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := bytes.Repeat([]byte("another user's file "), int(like.Size()))[:like.Size()]
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, victim, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, like.ModTime(), like.ModTime()); err != nil {
		t.Fatal(err)
	}
	return victim
}

// Reproduction 1: during the run, in/sub is renamed away and replaced by a symlink to a folder
// outside the input holding a file of the same name, size and mtime. Disposing of the source
// must not touch that file: the job records "source changed".
func TestSymlinkSwapDuringRunLeavesTheVictimAlone(t *testing.T) {
	for _, action := range []string{"delete", "move"} {
		t.Run(action, func(t *testing.T) {
			var moveTo string
			h := newHarness(t, harnessOpts{
				fake: func(o *mosaictest.Options) { o.ManualRuns = true },
				folder: func(f *pipeline.Folder) {
					f.AfterSuccess = action
					if action == "move" {
						moveTo = filepath.Join(filepath.Dir(f.Input), "done")
						f.AfterSuccessMoveTo = moveTo
					}
				},
			})
			src := video("swap " + action)
			h.drop("sub/clip.mov", src)
			j := h.waitJob("sub/clip.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })

			sub := filepath.Join(h.folder.Input, "sub")
			fi, err := os.Stat(filepath.Join(sub, "clip.mov"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(sub, filepath.Join(h.folder.Input, "sub-away")); err != nil {
				t.Fatal(err)
			}
			victimDir := filepath.Join(filepath.Dir(h.folder.Input), "victim")
			victim := plantVictim(t, victimDir, "clip.mov", fi)
			if err := os.Symlink(victimDir, sub); err != nil {
				t.Fatal(err)
			}

			if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
				t.Fatal(err)
			}
			j = h.waitClosed("sub/clip.mov")
			if got, err := os.ReadFile(filepath.Join(victimDir, "clip.mov")); err != nil || !bytes.Equal(got, victim) {
				t.Fatalf("the file behind the symlink was touched (%v)", err)
			}
			if !strings.Contains(j.Note, "source changed") {
				t.Fatalf("job %s, note %q: want it to record that the source changed", j.Status, j.Note)
			}
			if got, err := os.ReadFile(filepath.Join(h.folder.Input, "sub-away", "clip.mov")); err != nil || !bytes.Equal(got, src) {
				t.Fatalf("the renamed source was touched (%v)", err)
			}
			if action == "move" {
				if _, err := os.Lstat(filepath.Join(moveTo, "sub", "clip.mov")); !os.IsNotExist(err) {
					t.Fatalf("something was moved into move_to (%v)", err)
				}
			}
		})
	}
}

// A swap inside the folder (the link stays in it) is caught by the file's identity.
func TestSwapInsideTheFolderIsSourceChanged(t *testing.T) {
	h := newHarness(t, harnessOpts{
		fake:   func(o *mosaictest.Options) { o.ManualRuns = true },
		folder: func(f *pipeline.Folder) { f.AfterSuccess = "delete" },
	})
	src := video("inside swap")
	h.drop("a/clip.mov", src)
	j := h.waitJob("a/clip.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	fi, err := os.Stat(filepath.Join(h.folder.Input, "a", "clip.mov"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(h.folder.Input, "a"), filepath.Join(h.folder.Input, "a-away")); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(h.folder.Input, "b")
	victim := plantVictim(t, other, "clip.mov", fi)
	if err := os.Symlink("b", filepath.Join(h.folder.Input, "a")); err != nil {
		t.Fatal(err)
	}
	if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	j = h.waitClosed("a/clip.mov")
	if got, err := os.ReadFile(filepath.Join(other, "clip.mov")); err != nil || !bytes.Equal(got, victim) {
		t.Fatalf("another file of the folder was deleted in the source's place (%v)", err)
	}
	if !strings.Contains(j.Note, "source changed") {
		t.Fatalf("job %s, note %q: want it to record that the source changed", j.Status, j.Note)
	}
}

// Reproduction 1, read side: a final-component symlink swapped in before hashing must not make
// the daemon read (and upload) another user's file.
func TestSymlinkedSourceIsNeverReadOrUploaded(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.stop()
	src := video("real")
	f := h.dropOnly("clip.mov", src)
	fi, err := os.Stat(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	victimDir := filepath.Join(filepath.Dir(h.folder.Input), "victim")
	victim := video("secret")[:len(src)]
	if err := os.MkdirAll(victimDir, 0o755); err != nil {
		t.Fatal(err)
	}
	vp := filepath.Join(victimDir, "clip.mov")
	if err := os.WriteFile(vp, victim, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(vp, fi.ModTime(), fi.ModTime())
	if err := os.Remove(f.Path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(vp, f.Path); err != nil {
		t.Fatal(err)
	}
	h.start(nil)
	if err := h.p.FileReady(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	j := h.waitClosed("clip.mov")
	if st := h.fake.Stats(); st.StoragePosts != 0 || h.runsFor(victim) != 0 {
		t.Fatalf("the file behind the link was uploaded: %+v", st)
	}
	if j.Status != store.StatusSkipped || !strings.Contains(j.Note, "changed") {
		t.Fatalf("got %s %q; want skipped because the source changed", j.Status, j.Note)
	}
}

// Outputs and moved sources are written through the configured folder only: a symlink planted
// in the output folder does not lead the download elsewhere.
func TestOutputSymlinkIsNotFollowed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	elsewhere := filepath.Join(filepath.Dir(h.folder.Output), "elsewhere")
	if err := os.MkdirAll(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(h.folder.Output, "sub")); err != nil {
		t.Fatal(err)
	}
	h.drop("sub/clip.mov", video("out link"))
	j := h.waitClosed("sub/clip.mov")
	if j.Status == store.StatusDone {
		t.Fatalf("the output was written through a link out of the folder")
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("%d file(s) written outside the output folder", len(entries))
	}
}

package pipeline_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// mountTmpfs mounts a fresh tmpfs on dir (which must lie under t.TempDir()) and unmounts it
// when the test ends, whatever happened. Tests that need it skip unless run as root.
func mountTmpfs(t *testing.T, dir string) { t.Helper(); mountTmpfsSized(t, dir, "64m") }

func mountTmpfsSized(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; run the tests as root to cover unmounted folders")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unmount(dir) })
}

// unmount detaches whatever is mounted on dir (lazily: a file may still be open there).
func unmount(dir string) error {
	var err error
	for err == nil {
		err = syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	if err == syscall.EINVAL { // nothing (more) mounted there
		return nil
	}
	return err
}

func mustUnmount(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		t.Fatalf("unmount %s: %v", dir, err)
	}
}

// waitDegraded waits until the pipeline reports folder input degraded and returns the reason.
// It fails at once when job id closes meanwhile: the job went on without its folder.
func (h *harness) waitDegraded(input string, id int64) string {
	h.t.Helper()
	var reason string
	waitUntil(h.t, "the folder to be shown degraded", func() bool {
		if j, err := h.st.Get(h.t.Context(), id); err == nil && !j.Status.Open() {
			h.t.Fatalf("job closed as %s (%q %q) while a folder of it was away", j.Status, j.LastError, j.Note)
		}
		reason = h.p.Degraded()[input]
		return reason != ""
	})
	return reason
}

// Reproduction 2: the output share is unmounted while the run goes on. Nothing may be written
// into the bare mount point and the source must stay; once a fresh filesystem is mounted there
// the outputs are written to it and the source is handled as configured.
func TestOutputUnmountedDuringRunWaitsForTheMount(t *testing.T) {
	var out string
	h := newHarness(t, harnessOpts{
		fake: func(o *mosaictest.Options) { o.ManualRuns = true },
		folder: func(f *pipeline.Folder) {
			f.AfterSuccess = "delete"
			out = f.Output
			mountTmpfs(t, out)
		},
		options: func(o *pipeline.Options) { o.Recheck = 50 * time.Millisecond },
	})
	src := video("unmounted output")
	h.drop("clip.mov", src)
	j := h.waitJob("clip.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })

	mustUnmount(t, out)
	if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	reason := h.waitDegraded(h.folder.Input, j.ID)
	if !strings.Contains(reason, out) || !strings.Contains(reason, "mounted") {
		t.Errorf("degraded reason %q should name the output folder and say it is not mounted", reason)
	}
	waitUntil(t, "the job to wait for its output folder", func() bool { return historyHas(t, h.st, j.ID, "waiting for") })
	if got, _ := h.st.Get(t.Context(), j.ID); !got.Status.Open() {
		t.Fatalf("job closed as %s (%s %s) while its output folder was gone", got.Status, got.LastError, got.Note)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("%d file(s) written into the bare mount point: %v", len(entries), entries)
	}
	if _, err := os.Stat(filepath.Join(h.folder.Input, "clip.mov")); err != nil {
		t.Fatalf("the source must stay while its outputs are not written: %v", err)
	}

	mountTmpfs(t, out) // a fresh mount: a NAS comes back with a new device id
	j = h.waitClosed("clip.mov")
	if j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "clip.mp4")
	if _, err := os.Stat(filepath.Join(h.folder.Input, "clip.mov")); !os.IsNotExist(err) {
		t.Fatalf("after_success: delete was not applied once the outputs were safe (%v)", err)
	}
	if d := h.p.Degraded(); len(d) != 0 {
		t.Fatalf("still degraded after the remount: %v", d)
	}
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs", n)
	}
}

// Reproduction 3: the input share goes away while a file is uploaded. The file is not skipped:
// it waits for the folder and completes, with one run, once the share is back. The remounted
// file has a new device id: its content shows it is the same file, so it is then deleted as
// configured.
func TestInputUnmountedDuringUploadCompletesAfterRemount(t *testing.T) {
	var in string
	h := newHarness(t, harnessOpts{
		folder: func(f *pipeline.Folder) {
			in = f.Input
			f.AfterSuccess = "delete"
			mountTmpfs(t, in)
		},
		options: func(o *pipeline.Options) { o.Recheck = 50 * time.Millisecond },
	})
	h.fake.InjectFault(mosaictest.RouteStorage, mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: 500 * time.Millisecond, Count: 1})
	src := video("unmounted input")
	f := h.drop("clip.mov", src)
	waitUntil(t, "the upload to start", func() bool {
		for _, pr := range h.p.Progress() {
			if pr.Phase == "uploading" {
				return true
			}
		}
		return false
	})
	mustUnmount(t, in) // lazily: the upload holds the file open
	j := h.waitJob("clip.mov", func(store.Job) bool { return true })
	h.waitDegraded(in, j.ID)
	j = h.waitJob("clip.mov", func(j store.Job) bool { return historyHas(t, h.st, j.ID, "waiting for") })
	if !j.Status.Open() {
		t.Fatalf("job closed as %s (%s) while its input folder was away", j.Status, j.Note)
	}

	mountTmpfs(t, in)
	if err := os.WriteFile(f.Path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f.Path, f.ModTime, f.ModTime); err != nil {
		t.Fatal(err)
	}
	j = h.waitClosed("clip.mov")
	if j.Status != store.StatusDone {
		t.Fatalf("status %s: %s %s", j.Status, j.LastError, j.Note)
	}
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
	h.checkOutputs(h.folder.AgentID, src, "clip.mp4")
	if _, err := os.Stat(f.Path); !os.IsNotExist(err) || j.Note != "source deleted" {
		t.Fatalf("source after the remount: %v, note %q; want it deleted", err, j.Note)
	}
}

// After a remount a file of the same name, size and mtime but other content is not the
// processed file: it is left alone. (A fresh tmpfs recycles device and inode numbers, so only
// the remount the health check saw tells the files apart: the content is compared.)
func TestRemountedSourceWithOtherContentIsLeftAlone(t *testing.T) {
	var in string
	h := newHarness(t, harnessOpts{
		fake: func(o *mosaictest.Options) { o.ManualRuns = true },
		folder: func(f *pipeline.Folder) {
			in = f.Input
			f.AfterSuccess = "delete"
			mountTmpfs(t, in)
		},
		options: func(o *pipeline.Options) { o.Recheck = 20 * time.Millisecond },
	})
	src := video("original")
	f := h.drop("clip.mov", src)
	j := h.waitJob("clip.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	mustUnmount(t, in)
	h.waitDegraded(in, j.ID)
	mountTmpfs(t, in)
	other := bytes.Repeat([]byte("x"), len(src))
	if err := os.WriteFile(f.Path, other, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(f.Path, f.ModTime, f.ModTime)
	if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	j = h.waitClosed("clip.mov")
	if got, err := os.ReadFile(f.Path); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("a different file with the source's name was deleted (%v)", err)
	}
	if !strings.Contains(j.Note, "source changed") {
		t.Fatalf("note %q", j.Note)
	}
}

// A move_to share that is away pauses the disposal; the source is moved once it is back.
func TestMoveToUnmountedWaits(t *testing.T) {
	var done string
	h := newHarness(t, harnessOpts{
		fake: func(o *mosaictest.Options) { o.ManualRuns = true },
		folder: func(f *pipeline.Folder) {
			done = filepath.Join(filepath.Dir(f.Input), "done")
			f.AfterSuccess, f.AfterSuccessMoveTo = "move", done
			mountTmpfs(t, done)
		},
		options: func(o *pipeline.Options) { o.Recheck = 50 * time.Millisecond },
	})
	src := video("moved later")
	h.drop("a/clip.mov", src)
	j := h.waitJob("a/clip.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	mustUnmount(t, done)
	if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	h.waitDegraded(h.folder.Input, j.ID)
	waitUntil(t, "the job to wait for move_to", func() bool { return historyHas(t, h.st, j.ID, "waiting for") })
	if entries, _ := os.ReadDir(done); len(entries) != 0 {
		t.Fatalf("the source was moved into the bare mount point")
	}
	mountTmpfs(t, done)
	if j := h.waitClosed("a/clip.mov"); j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	if got, err := os.ReadFile(filepath.Join(done, "a", "clip.mov")); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("source not moved onto the remounted share: %v", err)
	}
}

// A cross-device move copies, syncs and removes the source, leaves no temporary file, and
// cleans up after itself when the copy fails (here: the target filesystem is full).
func TestCrossDeviceMove(t *testing.T) {
	var done string
	h := newHarness(t, harnessOpts{folder: func(f *pipeline.Folder) {
		done = filepath.Join(filepath.Dir(f.Input), "done")
		f.AfterSuccess, f.AfterSuccessMoveTo = "move", done
		mountTmpfs(t, done)
	}})
	src := video("across devices")
	h.drop("x/clip.mov", src)
	if j := h.waitClosed("x/clip.mov"); j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	if got, err := os.ReadFile(filepath.Join(done, "x", "clip.mov")); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("moved file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.folder.Input, "x", "clip.mov")); !os.IsNotExist(err) {
		t.Fatalf("source still there: %v", err)
	}
	assertNoTemps(t, done)
}

// A file that already exists in move_to is never overwritten; the source stays and a person
// is asked to decide.
func TestMoveNeverOverwrites(t *testing.T) {
	for _, crossDevice := range []bool{false, true} {
		t.Run(map[bool]string{false: "same device", true: "cross device"}[crossDevice], func(t *testing.T) {
			var done string
			h := newHarness(t, harnessOpts{folder: func(f *pipeline.Folder) {
				done = filepath.Join(filepath.Dir(f.Input), "done")
				f.AfterSuccess, f.AfterSuccessMoveTo = "move", done
				if crossDevice {
					mountTmpfs(t, done)
				}
			}})
			if err := os.MkdirAll(done, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(done, "clip.mov"), []byte("already here"), 0o644); err != nil {
				t.Fatal(err)
			}
			src := video("no overwrite")
			h.drop("clip.mov", src)
			j := h.waitClosed("clip.mov")
			if j.Status != store.StatusAttention || !strings.Contains(j.LastError, "already exists") {
				t.Fatalf("got %s %q; want attention because the target exists", j.Status, j.LastError)
			}
			if got, _ := os.ReadFile(filepath.Join(done, "clip.mov")); string(got) != "already here" {
				t.Fatal("the existing file in move_to was overwritten")
			}
			if got, err := os.ReadFile(filepath.Join(h.folder.Input, "clip.mov")); err != nil || !bytes.Equal(got, src) {
				t.Fatalf("the source must stay: %v", err)
			}
			assertNoTemps(t, done)
		})
	}
}

// A copy that fails half-way (the target is full) leaves neither a temporary file nor a
// missing source.
func TestCrossDeviceMoveFailureCleansUp(t *testing.T) {
	var done string
	h := newHarness(t, harnessOpts{folder: func(f *pipeline.Folder) {
		done = filepath.Join(filepath.Dir(f.Input), "done")
		f.AfterSuccess, f.AfterSuccessMoveTo = "move", done
		mountTmpfsSized(t, done, "4k")
	}, options: func(o *pipeline.Options) { o.Retry.MaxAttempts = 2 }})
	src := bytes.Repeat(video("big"), 40) // larger than the 4 KiB filesystem
	h.drop("clip.mov", src)
	j := h.waitClosed("clip.mov")
	if j.Status == store.StatusDone && !strings.Contains(j.Note, "moved") {
		t.Fatalf("unexpected success: %q", j.Note)
	}
	if got, err := os.ReadFile(filepath.Join(h.folder.Input, "clip.mov")); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("the source must stay after a failed copy: %v", err)
	}
	assertNoTemps(t, done)
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".mosaic-partial") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// A read-only share cannot carry a lock: LockFolder says so with ErrCannotLock, so the daemon
// can serve it unlocked with a warning.
func TestLockOnReadOnlyFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	os.MkdirAll(dir, 0o755)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(dir) })
	_, err := pipeline.LockFolder(dir, pipeline.LockHolder{Host: "h", PID: 1})
	if !errors.Is(err, pipeline.ErrCannotLock) {
		t.Fatalf("read-only folder: %v, want ErrCannotLock", err)
	}
}

// A share mounted read-only here but writable elsewhere: the instance holding its lock on the
// writable side is still seen, and named.
func TestLockHeldThroughAReadOnlyMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	rw := t.TempDir()
	first, err := pipeline.LockFolder(rw, holder("first"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ro := filepath.Join(t.TempDir(), "ro")
	os.MkdirAll(ro, 0o755)
	if err := syscall.Mount(rw, ro, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(ro) })
	if err := syscall.Mount("", ro, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.LockFolder(ro, holder("second"))
	var le *pipeline.LockedError
	if !errors.As(err, &le) || le.Holder.Config != "/etc/first.yaml" {
		t.Fatalf("read-only view of a held folder: %v, want a LockedError naming the first holder", err)
	}
}

package watcher

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a fresh tmpfs on dir (under t.TempDir()) and detaches whatever is still
// mounted there when the test ends. It skips the test unless run as root.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; run the tests as root to cover unmounted roots")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		for syscall.Unmount(dir, syscall.MNT_DETACH) == nil {
		}
	})
}

// An unmounted root is degraded, not "replaced by an empty folder": what lies in the bare
// mount point is never reported, and the root is healthy again once something is mounted.
func TestUnmountedRootIsDegradedNotRescanned(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		base := t.TempDir()
		root, outer := filepath.Join(base, "in"), filepath.Join(base, "outside")
		writeFile(t, filepath.Join(root, "under the mount.mp4"), validMP4(10))
		os.MkdirAll(outer, 0o755)
		mountTmpfs(t, root)
		h := startOn(t, root, outer, mode)
		writeFile(t, h.path("a.mp4"), validMP4(20))
		h.waitKind(Ready, "a.mp4")

		if err := syscall.Unmount(root, syscall.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
		e := h.waitFor(func(e Event) bool { return e.Kind == Health && !e.Healthy }, "unhealthy")
		if !strings.Contains(e.Reason, "not mounted") {
			t.Errorf("reason %q should say the root is not mounted", e.Reason)
		}
		h.noMore(func(e Event) bool { return e.Rel == "under the mount.mp4" || e.Kind == Vanished }, 4*testSettle)
		if n := h.countHealth(true); n != 1 {
			t.Fatalf("the bare mount point was reported healthy (%d healthy events)", n)
		}

		mountTmpfs(t, root)
		writeFile(t, h.path("b.mp4"), validMP4(30))
		h.waitKind(Ready, "b.mp4")
	})
}

func (h *harness) countHealth(healthy bool) int {
	n := 0
	for _, e := range h.snapshot() {
		if e.Kind == Health && e.Healthy == healthy {
			n++
		}
	}
	return n
}

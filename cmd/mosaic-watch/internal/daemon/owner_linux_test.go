package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
)

// An input the daemon cannot write to (a read-only share, after_success: keep) cannot carry a
// lock: it is served anyway, with a warning that says why.
func TestReadOnlyInputIsServedWithoutALock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a read-only bind mount needs root")
	}
	dir := t.TempDir()
	cfg := ownerConfig(t, dir)
	in := cfg.Folders[0].Input
	if err := syscall.Mount(in, in, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(in, syscall.MNT_DETACH) })
	ro := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY)
	if err := syscall.Mount("", in, "", ro, ""); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	d, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), "test")
	if err != nil {
		t.Fatalf("New with a read-only input: %v", err)
	}
	defer d.Close()
	if len(d.served) != 1 || len(d.inputLocks) != 0 {
		t.Fatalf("served %d folder(s) with %d lock(s); want the folder served unlocked",
			len(d.served), len(d.inputLocks))
	}
	if !strings.Contains(logs.String(), "without its lock") {
		t.Fatalf("no warning about the missing lock:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(in, ".mosaic-watch.lock")); !os.IsNotExist(err) {
		t.Fatalf("a lock file appeared in a read-only folder (%v)", err)
	}
}

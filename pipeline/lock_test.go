package pipeline_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

func holder(name string) pipeline.LockHolder {
	return pipeline.LockHolder{Host: "host-" + name, PID: os.Getpid(), Config: "/etc/" + name + ".yaml", Instance: name}
}

// A second lock on the same folder fails and names the holder; once released it can be taken.
func TestLockFolderIsExclusive(t *testing.T) {
	dir := t.TempDir()
	first, err := pipeline.LockFolder(dir, holder("first"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.LockFolder(dir, holder("second"))
	var le *pipeline.LockedError
	if !errors.As(err, &le) || le.Holder.Host != "host-first" || le.Holder.Config != "/etc/first.yaml" || le.Holder.PID != os.Getpid() {
		t.Fatalf("second lock: %v (%+v), want a LockedError naming the first holder", err, le)
	}
	for _, want := range []string{"host-first", "/etc/first.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %s", err, want)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, pipeline.LockName)); !os.IsNotExist(err) {
		t.Errorf("the lock file was left behind after a clean release (%v)", err)
	}
	second, err := pipeline.LockFolder(dir, holder("second"))
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	second.Close()
}

// A holder that dies (kill -9) leaves its lock file behind, but not its lock.
func TestLockOfADeadHolderIsStale(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "MOSAIC_LOCK_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q %v", line, err)
	}
	_, err = pipeline.LockFolder(dir, holder("second"))
	var le *pipeline.LockedError
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid {
		t.Fatalf("while the helper lives: %v, want it named (PID %d)", err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(dir, pipeline.LockName)); err != nil {
		t.Fatalf("the dead holder's file should still be there: %v", err)
	}
	l, err := pipeline.LockFolder(dir, holder("second"))
	if err != nil {
		t.Fatalf("lock after the holder died: %v", err)
	}
	l.Close()
}

// TestLockHelperProcess is the lock holder of TestLockOfADeadHolderIsStale, run as a child.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv("MOSAIC_LOCK_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	if _, err := pipeline.LockFolder(dir, pipeline.LockHolder{Host: "helper", PID: os.Getpid()}); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	select {}
}

func sharedHolder(name, store string) pipeline.LockHolder {
	h := holder(name)
	h.Store, h.Database = store, "postgres://mosaic@db/"+store
	return h
}

// Instances on one shared store hold an input folder together; one serving it alone, or on
// another store, is refused, and refuses them.
func TestLockFolderSharedWithinOneStore(t *testing.T) {
	dir := t.TempDir()
	a, err := pipeline.LockFolderShared(dir, sharedHolder("a", "db-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.LockFolderShared(dir, sharedHolder("b", "db-1"))
	if err != nil {
		t.Fatalf("second instance on the same store: %v", err)
	}
	var le *pipeline.LockedError
	_, err = pipeline.LockFolderShared(dir, sharedHolder("c", "db-2"))
	if !errors.As(err, &le) || le.Holder.Store != "db-1" || !strings.Contains(err.Error(), "postgres://mosaic@db/db-1") {
		t.Fatalf("instance on another store: %v, want refused naming the database", err)
	}
	if _, err := pipeline.LockFolder(dir, holder("alone")); !errors.As(err, &le) || le.Holder.Store != "db-1" {
		t.Fatalf("instance serving alone: %v, want refused", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, pipeline.LockName)); err != nil {
		t.Fatalf("the first holder removed the lock file while another still holds it: %v", err)
	}
	if _, err := pipeline.LockFolder(dir, holder("alone")); !errors.As(err, &le) {
		t.Fatalf("instance serving alone while b holds the folder: %v, want refused", err)
	}
	b.Close()
	if _, err := os.Stat(filepath.Join(dir, pipeline.LockName)); !os.IsNotExist(err) {
		t.Fatalf("the last holder left the lock file (%v)", err)
	}
	alone, err := pipeline.LockFolder(dir, holder("alone"))
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	_, err = pipeline.LockFolderShared(dir, sharedHolder("d", "db-1"))
	if !errors.As(err, &le) || le.Holder.Instance != "alone" || !strings.Contains(err.Error(), "alone") {
		t.Fatalf("shared instance while one serves alone: %v, want refused", err)
	}
}

// Jobs are keyed by the input folder's path: a host of the same store with the share mounted
// at another path would make a second job of every file (a second billed run, and each host
// stuck on the other's jobs, whose folder it does not know). It is refused.
func TestLockFolderSharedRefusesTheShareAtAnotherPath(t *testing.T) {
	dir := t.TempDir()
	share := filepath.Join(dir, "nas")
	if err := os.Mkdir(share, 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Symlink(share, mnt); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	a, err := pipeline.LockFolderShared(share, sharedHolder("a", "db-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := pipeline.LockFolderShared(mnt, sharedHolder("b", "db-1"))
	if err == nil {
		b.Close()
		t.Fatal("a host of the same store on the share at another path was let in")
	}
	if !strings.Contains(err.Error(), share) || !strings.Contains(err.Error(), "same path") {
		t.Fatalf("the share at another path: %v, want the path the others use named", err)
	}
	c, err := pipeline.LockFolderShared(share, sharedHolder("c", "db-1"))
	if err != nil {
		t.Fatalf("a host at the same path: %v", err)
	}
	c.Close()
}

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/sample"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/service"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// TestServiceLifecycle installs the real binary as a service with this machine's service
// manager, sees it process a file against the fake Mosaic, stops, restarts and uninstalls it,
// and checks nothing of the service is left. It needs root and a usable service manager
// (systemd as PID 1, or System V init scripts with the `service` command), so it runs in CI.
func TestServiceLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("installs a real service")
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux to install a system service")
	}
	platform := service.Platform()
	switch platform {
	case service.Systemd:
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			t.Skip("systemctl is installed but systemd is not running as PID 1: no usable service manager")
		}
	case service.SysV:
		if _, err := exec.LookPath("service"); err != nil {
			t.Skip("System V init detected but the `service` command is missing: no usable service manager")
		}
	default:
		t.Skipf("service manager %q is not covered by this test", platform)
	}
	t.Logf("service manager: %s", platform)

	fake, err := mosaictest.NewServer(mosaictest.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	agent := fake.AddAgent(mosaictest.AgentSpec{Name: "service-test"})

	dir := t.TempDir()
	bin := binary(t)
	cfg := writeServiceTestConfig(t, dir, agent,
		"  base_url: "+fake.URL()+"\n  poll_interval: 100ms\n",
		"retry: {base: 50ms, max: 500ms, attempts: 30}\nshutdown_timeout: 5s\n"+
			"log: {level: debug}\ndefaults:\n  settle: 300ms\n")

	name := fmt.Sprintf("mosaic-watch-test-%d", os.Getpid())
	spec := service.Spec{Name: name}
	target := &service.Target{Platform: platform, Spec: spec}
	defPath := target.DefinitionPath()
	logFile := spec.LogFile()
	svc := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"service"}, append(args, "--name", name)...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mosaic-watch service %s: %v\n%s\n%s", strings.Join(args, " "), err, out,
				serviceLogs(platform, name, logFile))
		}
		return string(out)
	}
	t.Cleanup(func() {
		exec.Command(bin, "service", "uninstall", "--name", name).Run()
		if t.Failed() {
			t.Logf("service logs:\n%s", serviceLogs(platform, name, logFile))
		}
		os.Remove(logFile) // logs outlive an uninstall by design; this test's go with it
	})

	out := svc("install", "--config", cfg)
	if !strings.Contains(out, defPath) || !strings.Contains(out, "run --config "+cfg) {
		t.Errorf("install output does not name %s and the absolute config path:\n%s", defPath, out)
	}
	if _, err := os.Stat(defPath); err != nil {
		t.Fatalf("service definition not written: %v", err)
	}
	if out := svc("status"); !strings.Contains(out, ": stopped") {
		t.Errorf("status after install = %q, want stopped", out)
	}

	svc("start")
	if out := svc("status"); !strings.Contains(out, ": running") {
		t.Errorf("status after start = %q, want running", out)
	}
	src := sample.MP4(1500, 640, 360, []byte("service lifecycle test"))
	testenv.DropFile(t, filepath.Join(dir, "in", "clip.mp4"), src)
	waitForOutput(t, filepath.Join(dir, "out", "clip.mp4"), agent, src)

	svc("stop")
	if out := svc("status"); !strings.Contains(out, ": stopped") {
		t.Errorf("status after stop = %q, want stopped", out)
	}
	if pids := daemonPIDs(cfg); len(pids) > 0 {
		t.Errorf("daemon still running after stop: pids %v", pids)
	}

	// The next start resumes from the same state: a second file is processed too.
	svc("start")
	src2 := sample.MP4(800, 320, 240, []byte("after restart"))
	testenv.DropFile(t, filepath.Join(dir, "in", "second.mp4"), src2)
	waitForOutput(t, filepath.Join(dir, "out", "second.mp4"), agent, src2)
	svc("restart")
	if out := svc("status"); !strings.Contains(out, ": running") {
		t.Errorf("status after restart = %q, want running", out)
	}

	out = svc("uninstall") // stops the running service first
	if !strings.Contains(out, "Removed") {
		t.Errorf("uninstall output = %q", out)
	}
	if out := svc("status"); !strings.Contains(out, ": not installed") {
		t.Errorf("status after uninstall = %q, want not installed", out)
	}
	if pids := daemonPIDs(cfg); len(pids) > 0 {
		t.Errorf("daemon still running after uninstall: pids %v", pids)
	}
	leftovers := []string{defPath}
	switch platform {
	case service.SysV:
		links, _ := filepath.Glob("/etc/rc[0-6S].d/*" + name)
		leftovers = append(leftovers, links...)
		leftovers = append(leftovers, "/var/run/"+name+".pid")
	case service.Systemd:
		leftovers = append(leftovers, "/etc/systemd/system/multi-user.target.wants/"+name+".service")
	}
	for _, p := range leftovers {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("left behind after uninstall: %s", p)
		}
	}
}

// waitForOutput polls until path holds the fake's output for src (one output per run).
func waitForOutput(t *testing.T, path, agent string, src []byte) {
	t.Helper()
	sum := sha256.Sum256(src)
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := os.ReadFile(path)
		if err == nil && len(got) > 0 {
			want := mosaictest.OutputBytes(agent, hex.EncodeToString(sum[:]), 0, len(got))
			if !bytes.Equal(got, want) {
				t.Fatalf("%s has the wrong content", path)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// daemonPIDs lists live processes running the daemon with this config.
func daemonPIDs(cfg string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("\x00run\x00--config\x00"+cfg)) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue // exited, waiting to be reaped
		}
		pids = append(pids, filepath.Base(filepath.Dir(p)))
	}
	return pids
}

func serviceLogs(platform, name, logFile string) string {
	if platform == service.Systemd {
		out, _ := exec.Command("journalctl", "-u", name, "--no-pager", "-n", "100").CombinedOutput()
		return string(out)
	}
	f, err := os.Open(logFile)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	return string(b)
}

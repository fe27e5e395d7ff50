package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// The end-to-end tests, the service test and the benchmark run the real binary as a process.
// It is built once for the whole package (with -race when the tests run with it) and removed
// when they are done.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// binary builds the binary on first use and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "mosaic-watch-e2e-bin-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "mosaic-watch")
		if runtime.GOOS == "windows" {
			build.path += ".exe"
		}
		args := []string{"build", "-o", build.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Env = os.Environ()
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// daemonBinary is binary for the end-to-end tests, which -short skips.
func daemonBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the binary")
	}
	return binary(t)
}

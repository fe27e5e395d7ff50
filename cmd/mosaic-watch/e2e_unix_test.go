//go:build linux || darwin

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// TestE2EUnreadableFile: a video the daemon cannot read is never uploaded and shows up in status
// as needing attention with the reason, while readable files go through. Root reads everything,
// so under root the daemon runs as the unprivileged user "nobody".
func TestE2EUnreadableFile(t *testing.T) {
	e := newE2E(t, mosaictest.Options{},
		[]folderSpec{{name: "main", extra: "    incomplete_after: 1s"}}, "")
	agent := e.fake.AgentIDs()[0]
	if os.Geteuid() == 0 {
		const nobody = 65534
		// The daemon must reach its binary and own its folders; the locked file stays root's.
		for _, d := range []string{filepath.Dir(e.bin), filepath.Dir(e.dir), e.dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
			if err == nil {
				os.Lchown(p, nobody, nobody)
			}
			return nil
		})
		e.prepare = func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		}
	}
	locked := e.path("in/main/locked.mp4")
	if err := os.WriteFile(locked, testenv.Clip("nobody may read this"), 0o000); err != nil {
		t.Fatal(err)
	}
	os.Chmod(locked, 0o000)
	e.start()
	open := testenv.Clip("readable")
	e.writeFile("main/open.mp4", open)
	if os.Geteuid() == 0 {
		os.Lchown(e.path("in/main/open.mp4"), 65534, 65534)
	}
	e.waitOutput("main/open.mp4", agent, open, 0)
	v := e.waitState("main/locked.mp4", "attention")
	if !strings.Contains(v.Error, "permission denied") {
		t.Fatalf("unreadable file: %q", v.Error)
	}
	e.stop()
	if e.fake.Stats().StoragePosts != 1 {
		t.Fatalf("storage posts: %d, want only the readable file's", e.fake.Stats().StoragePosts)
	}
	if _, err := os.Stat(locked); err != nil {
		t.Fatalf("the unreadable file was lost: %v", err)
	}
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// daemonProc is one more daemon process next to e's.
type daemonProc struct {
	cmd  *exec.Cmd
	logs *testenv.SyncBuffer
	done chan struct{} // closed once the process exited; err is then its Wait error
	err  error
}

func (e *e2e) startAnother(cfg string) *daemonProc {
	e.t.Helper()
	p := &daemonProc{cmd: exec.Command(e.bin, "run", "--config", cfg), logs: &testenv.SyncBuffer{},
		done: make(chan struct{})}
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = e.env, p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if e.t.Failed() {
			e.t.Logf("second daemon's log:\n%s", p.logs.String())
		}
	})
	return p
}

// Reproduction 5, first half: a second daemon on the same state_dir exits 1 at once, naming the
// one that runs; it never touches the first one's leases.
func TestE2ESecondDaemonOnTheSameStateDirExits(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	e.start()
	testenv.WaitFor(t, 30*time.Second, "the daemon to start", func() bool {
		return strings.Contains(e.logs.String(), startedLine)
	})
	start := time.Now()
	second := e.startAnother(e.cfg)
	select {
	case <-second.done:
		ee, ok := second.err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("second daemon: %v, want exit status 1", second.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second daemon did not exit")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the second daemon took %s to give up, want under 2s", d)
	}
	want := fmt.Sprintf("already running as PID %d", e.proc.Process.Pid)
	if !strings.Contains(second.logs.String(), want) {
		t.Fatalf("second daemon's message does not say %q:\n%s", want, second.logs.String())
	}
	// The first one still works.
	src := testenv.Clip("still served")
	e.writeFile("main/after.mov", src)
	e.waitOutput("main/after.mp4", e.fake.AgentIDs()[0], src, 0)
	e.stop()
}

// Reproduction 5, second half: the packaged service and a user's instance (another state_dir)
// on the same input. The second refuses that folder, naming the first, and keeps serving its
// own: every file runs once.
func TestE2ETwoInstancesOnOneInputRunEachFileOnce(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "shared"}}, "")
	agent := e.fake.AgentIDs()[0]
	e.start()
	testenv.WaitFor(t, 30*time.Second, "the first daemon to start", func() bool {
		return strings.Contains(e.logs.String(), startedLine)
	})

	for _, d := range []string{"in/own", "out/own", "out/shared2"} {
		os.MkdirAll(e.path(d), 0o755)
	}
	first, _ := os.ReadFile(e.cfg)
	cfg2 := strings.Replace(string(first), "state_dir: ./state", "state_dir: ./state2", 1)
	cfg2 = strings.Replace(cfg2, "output: ./out/shared", "output: ./out/shared2", 1)
	cfg2 += fmt.Sprintf("  - name: own\n    input: ./in/own\n    output: ./out/own\n"+
		"    agent_id: %s\n", agent)
	path2 := e.path("second.yaml")
	if err := os.WriteFile(path2, []byte(cfg2), 0o600); err != nil {
		t.Fatal(err)
	}
	second := e.startAnother(path2)
	testenv.WaitFor(t, 30*time.Second, "the second daemon to start", func() bool {
		return strings.Contains(second.logs.String(), startedLine)
	})
	logs := second.logs.String()
	for _, want := range []string{"folder refused", fmt.Sprintf("PID %d", e.proc.Process.Pid), e.cfg} {
		if !strings.Contains(logs, want) {
			t.Errorf("the second daemon's log does not name the first instance (%q):\n%s", want, logs)
		}
	}

	shared, own := testenv.Clip("dropped into the shared folder"), testenv.Clip("its own folder")
	e.writeFile("shared/clip.mov", shared)
	e.writeFile("own/clip.mov", own)
	e.waitOutput("shared/clip.mp4", agent, shared, 0)
	e.waitOutput("own/clip.mp4", agent, own, 0)
	second.cmd.Process.Signal(os.Interrupt)
	<-second.done
	e.stop()
	if n := e.runs(shared, agent); n != 1 {
		t.Fatalf("the shared folder's file ran %d times, want 1", n)
	}
	if entries, _ := os.ReadDir(e.path("out/shared2")); len(entries) != 0 {
		t.Fatalf("the second instance wrote outputs for the folder it refused")
	}
	if _, err := os.Stat(e.path("in/shared", ".mosaic-watch.lock")); !os.IsNotExist(err) {
		t.Errorf("the input lock was not released on exit (%v)", err)
	}
}

// Reproduction 4 through the real CLI: a loop is refused with exit 2, naming both folders;
// a one-way chain is fine.
func TestE2ELoopConfigExits2ChainExits0(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, nil, "")
	for _, d := range []string{"in/a", "in/b", "out/c"} {
		os.MkdirAll(e.path(d), 0o755)
	}
	base, _ := os.ReadFile(e.cfg)
	agent := e.fake.AgentIDs()[0]
	folder := func(name, in, out string) string {
		return fmt.Sprintf("  - name: %s\n    input: %s\n    output: %s\n    agent_id: %s\n",
			name, in, out, agent)
	}
	loop := string(base) + folder("a", "./in/a", "./in/b") + folder("b", "./in/b", "./in/a")
	chain := string(base) + folder("a", "./in/a", "./in/b") + folder("b", "./in/b", "./out/c")
	for name, c := range map[string]struct {
		text string
		code int
		want []string
	}{
		"loop":  {loop, 2, []string{"folder loop", `folders[0] "a"`, `folders[1] "b"`}},
		"chain": {chain, 0, nil},
	} {
		p := e.path(name + ".yaml")
		os.WriteFile(p, []byte(c.text), 0o600)
		out, code := e.cli("validate", "--config", p)
		if code != c.code {
			t.Fatalf("%s: validate exit %d, want %d:\n%s", name, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output does not contain %q:\n%s", name, w, out)
			}
		}
	}
	out, code := e.cli("run", "--config", e.path("loop.yaml"))
	if code != 2 || !strings.Contains(out, "folder loop") {
		t.Fatalf("run with a loop: exit %d:\n%s", code, out)
	}
}

// A YAML alias bomb is refused by validate (exit 2) instead of eating memory.
func TestE2EAliasBombRefused(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main", extra: `    update_params:
      node:
        a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]`}}, "")
	out, code := e.cli("validate", "--config", e.cfg)
	if code != 2 || !strings.Contains(out, "aliases") {
		t.Fatalf("validate: exit %d, want 2 refusing the aliases:\n%s", code, out)
	}
}

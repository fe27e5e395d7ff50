package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type event struct{ kind, msg string }

type fakeEventSink struct {
	mu     sync.Mutex
	events []event
}

func (s *fakeEventSink) add(kind, msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, event{kind, msg})
	return nil
}
func (s *fakeEventSink) Info(_ uint32, m string) error    { return s.add("info", m) }
func (s *fakeEventSink) Warning(_ uint32, m string) error { return s.add("warning", m) }
func (s *fakeEventSink) Error(_ uint32, m string) error   { return s.add("error", m) }

func TestEventLogHandler(t *testing.T) {
	sink := &fakeEventSink{}
	log := slog.New(newEventLogHandler(sink, "info", "text")).With("folder", "captions")
	log.Debug("not logged at info")
	log.Info("started", "files", 3)
	log.WithGroup("job").Warn("retrying", "id", 7)
	log.Error("upload failed", "err", errors.New("boom"))
	want := []event{
		{"info", `level=INFO msg=started folder=captions files=3`},
		{"warning", `level=WARN msg=retrying folder=captions job.id=7`},
		{"error", `level=ERROR msg="upload failed" folder=captions err=boom`},
	}
	if fmt.Sprint(sink.events) != fmt.Sprint(want) {
		t.Errorf("events:\n got %q\nwant %q", sink.events, want)
	}

	sink = &fakeEventSink{}
	log = slog.New(newEventLogHandler(sink, "warn", "json"))
	log.Info("dropped below warn")
	log.Warn("disk nearly full", "free", "1GiB")
	if len(sink.events) != 1 || sink.events[0].kind != "warning" {
		t.Fatalf("events = %q, want one warning", sink.events)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(sink.events[0].msg), &rec); err != nil {
		t.Fatalf("json format: %v: %s", err, sink.events[0].msg)
	}
	if rec["msg"] != "disk nearly full" || rec["free"] != "1GiB" || rec["time"] != nil {
		t.Errorf("json event = %v (want msg and attrs, no time: the Event Log stamps events)", rec)
	}
}

func TestEventLogHandlerConcurrent(t *testing.T) {
	sink := &fakeEventSink{}
	log := slog.New(newEventLogHandler(sink, "info", "text"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			l := log.With("g", g)
			for i := range 50 {
				l.Info("tick", "i", i)
			}
		})
	}
	wg.Wait()
	if len(sink.events) != 400 {
		t.Fatalf("%d events, want 400", len(sink.events))
	}
	for _, e := range sink.events {
		if strings.Count(e.msg, "msg=tick") != 1 {
			t.Fatalf("records mixed up: %q", e.msg)
		}
	}
}

func TestManagedDaemonStartStop(t *testing.T) {
	running := make(chan struct{})
	m := &managedDaemon{
		run: func(ctx context.Context) error {
			close(running)
			<-ctx.Done()
			return errors.New("stopped: " + context.Cause(ctx).Error())
		},
		stopBound: 5 * time.Second,
		onCrash:   func(err error) { t.Errorf("crash reported on a requested stop: %v", err) },
		log:       slog.New(slog.DiscardHandler),
	}
	if err := m.Start(); err != nil { // returns at once although run blocks
		t.Fatal(err)
	}
	<-running
	if err := m.Stop(); err == nil || !strings.Contains(err.Error(), "stopped: context canceled") {
		t.Errorf("Stop = %v, want run's result after cancel", err)
	}
	begin := time.Now()
	m.Stop() // a second stop (SCM retry) returns the same result without waiting
	if d := time.Since(begin); d > time.Second {
		t.Errorf("second Stop took %s", d)
	}
}

func TestManagedDaemonStopIsBounded(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	m := &managedDaemon{
		run:       func(context.Context) error { <-release; return nil }, // ignores cancellation
		stopBound: 50 * time.Millisecond,
		log:       slog.New(slog.DiscardHandler),
	}
	m.Start()
	begin := time.Now()
	if err := m.Stop(); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Stop took %s with a 50ms bound", d)
	}
}

func TestManagedDaemonCrash(t *testing.T) {
	crashed := make(chan error, 1)
	m := &managedDaemon{
		run:       func(context.Context) error { return errors.New("state dir unwritable") },
		stopBound: time.Second,
		onCrash:   func(err error) { crashed <- err },
		log:       slog.New(slog.DiscardHandler),
	}
	m.Start()
	select {
	case err := <-crashed:
		if err.Error() != "state dir unwritable" {
			t.Errorf("crash err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a daemon that ended on its own was not reported")
	}
}

// runCLI runs one command line in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errb, lookupEnv: func(string) (string, bool) { return "", false }}
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// writeServiceTestConfig writes a valid config with one folder (dir/in -> dir/out); mosaicExtra
// adds lines under mosaic:, topExtra top-level sections.
func writeServiceTestConfig(t *testing.T, dir, agent, mosaicExtra, topExtra string) string {
	t.Helper()
	for _, d := range []string{"in", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "config.yaml")
	body := "mosaic:\n  api_key: mk_test_0123456789abcdef\n" + mosaicExtra + "state_dir: ./state\n" + topExtra +
		"folders:\n  - input: ./in\n    output: ./out\n    agent_id: " + agent + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServiceInstallDryRunUsesAbsoluteConfigPath(t *testing.T) {
	dir := t.TempDir()
	writeServiceTestConfig(t, dir, "123e4567-e89b-12d3-a456-789012345678", "", "")
	t.Chdir(dir)
	code, out, errOut := runCLI(t, "service", "install", "--dry-run", "--config", "config.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	abs := filepath.Join(dir, "config.yaml")
	if !strings.Contains(out, abs) {
		t.Errorf("definition does not carry the absolute config path %s:\n%s", abs, out)
	}
	if strings.Contains(strings.ReplaceAll(out, abs, ""), "config.yaml") {
		t.Errorf("definition mentions the config by a relative path:\n%s", out)
	}
}

func TestServiceCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("mosaic:\n  api_key: mk_x\nfolders:\n  - input: ./missing\n    output: ./out\n    agnt_id: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"service", "install", "--config", bad}, exitUsage, "agnt_id"},
		{[]string{"service", "install"}, exitUsage, "--config FILE is required"},
		{[]string{"service"}, exitUsage, "name an action"},
		{[]string{"service", "explode"}, exitUsage, `unknown action "explode"`},
		{[]string{"service", "status", "--name", "bad name"}, exitUsage, "--name"},
		{[]string{"service", "status", "extra"}, exitUsage, `unexpected argument "extra"`},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	// Flags may come before the action.
	code, out, errOut := runCLI(t, "service", "--name", "mw-flags-first", "status")
	if code != 0 || !strings.Contains(out, "mw-flags-first: not installed") {
		t.Errorf("flags first: exit %d, out %q, err %q", code, out, errOut)
	}
}

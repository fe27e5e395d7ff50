package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

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

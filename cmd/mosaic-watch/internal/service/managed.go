package service

// The daemon under a service manager that drives it through calls rather than signals (the
// Windows Service Control Manager): Start must return at once, Stop within a bounded time.

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// managedDaemon runs one daemon instance for the service manager.
type managedDaemon struct {
	// run is the daemon; it returns after ctx ends and a bounded shutdown.
	run       func(ctx context.Context) error
	stopBound time.Duration   // how long Stop waits for run to return
	onCrash   func(err error) // run returned without being asked to stop
	log       *slog.Logger

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{} // closed when run returned; err is its result
	err      error
	stopping bool
}

// Start launches the daemon in the background and returns at once.
func (m *managedDaemon) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done, m.err, m.stopping = cancel, make(chan struct{}), nil, false
	done := m.done
	go func() {
		err := m.run(ctx)
		m.mu.Lock()
		crashed := !m.stopping
		m.err = err
		m.mu.Unlock()
		close(done)
		if crashed && m.onCrash != nil {
			m.onCrash(err)
		}
	}()
	return nil
}

// Stop asks the daemon to stop and waits at most stopBound: whatever is still in flight
// resumes from the database at the next start.
func (m *managedDaemon) Stop() error {
	m.mu.Lock()
	if m.cancel == nil {
		m.mu.Unlock()
		return nil
	}
	m.stopping = true
	m.cancel()
	done := m.done
	m.mu.Unlock()
	t := time.NewTimer(m.stopBound)
	defer t.Stop()
	select {
	case <-done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.err
	case <-t.C:
		m.log.Warn("the daemon did not stop in time; exiting anyway, "+
			"unfinished work resumes at the next start", "waited", m.stopBound)
		return nil
	}
}

// Serve hands this process to the service manager (the Windows SCM dispatcher) as the named
// service until it stops the service. run is the daemon: it must return after its context ends
// and a shutdown bounded by stopBound. A daemon that ends on its own is logged and exit is
// called, so the service manager sees the failure and applies its restart policy.
func Serve(name string, run func(context.Context) error, stopBound time.Duration, log *slog.Logger,
	exit func()) error {
	m := &managedDaemon{
		run:       run,
		stopBound: stopBound,
		log:       log,
		onCrash: func(err error) {
			log.Error("the daemon stopped on its own; exiting so the service restarts", "err", err)
			exit()
		},
	}
	return runManaged(name, managedProgram{start: m.Start, stop: m.Stop})
}

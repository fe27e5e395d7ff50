package pipeline

import (
	"context"
	"sync"
	"time"
)

// gate pauses all API work: until a Retry-After passes, or while the API key is rejected.
type gate struct {
	now func() time.Time

	mu          sync.Mutex
	pausedUntil time.Time
	pauseWhy    string
	authErr     error
}

func newGate(now func() time.Time) *gate { return &gate{now: now} }

func (g *gate) open() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.authErr == nil && !g.now().Before(g.pausedUntil)
}

func (g *gate) pauseFor(d time.Duration, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until := g.now().Add(d); until.After(g.pausedUntil) {
		g.pausedUntil = until
		g.pauseWhy = why
	}
}

// authFailed blocks all work; it reports whether work was running until now.
func (g *gate) authFailed(err error) (first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	first = g.authErr == nil
	g.authErr = err
	return first
}

func (g *gate) authOK() (wasBlocked bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	wasBlocked = g.authErr != nil
	g.authErr = nil
	return wasBlocked
}

func (g *gate) authBlocked() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.authErr
}

func (g *gate) reason() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.authErr != nil:
		return "Mosaic rejected the API key: " + g.authErr.Error()
	case g.now().Before(g.pausedUntil):
		return g.pauseWhy + " until " + g.pausedUntil.Format(time.RFC3339)
	}
	return ""
}

// authLoop re-checks a rejected API key periodically and reports loudly until it works again.
// Jobs are not failed meanwhile: they wait.
func (p *Pipeline) authLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.AuthRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := p.gate.authBlocked()
		if err == nil {
			continue
		}
		if _, werr := p.api.WhoAmI(ctx); werr != nil {
			if ctx.Err() == nil {
				p.log.Error("Mosaic rejects the API key: all work is paused until it works; check mosaic.api_key",
					"err", werr)
			}
			continue
		}
		if p.gate.authOK() {
			p.log.Info("the API key works again; resuming work")
			for _, s := range p.stages {
				p.wake(s.steps[0])
			}
			p.WakePoller()
		}
	}
}

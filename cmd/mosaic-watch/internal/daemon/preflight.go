package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

const (
	preflightTimeout = 15 * time.Second // one folder's check at start
	preflightBase    = 5 * time.Second  // then checks in the background back off from here...
	preflightMax     = 5 * time.Minute  // ...up to here
	creditsEvery     = 5 * time.Minute  // how often the credit balance is refreshed
)

// preflight checks folders' agents with Mosaic (pipeline.Preflight). An agent that cannot be
// used as configured is a configuration problem, returned as a config.ErrorList that names the
// file and line. A folder whose check got no answer is returned in left: it is checked again in
// the background, and never stops the daemon for that. folders index cfg.Folders: the
// configuration the daemon started with (a reload may replace it meanwhile).
func (d *Daemon) preflight(ctx context.Context, cfg *config.Config, folders []int) (left []int,
	err error) {
	var problems config.ErrorList
	for n, i := range folders {
		f := &cfg.Folders[i]
		pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
		agent, err := pipeline.Preflight(pctx, d.client, f.PipelineFolder())
		cancel()
		var pe *pipeline.PreflightError
		switch {
		case errors.As(err, &pe):
			for _, p := range pe.Problems {
				problems = append(problems, cfg.Problem(f, p.Key, p.Msg))
			}
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			d.log.Warn("could not check the folder's agent with Mosaic; working on and checking "+
				"again in the background", "folder", f.Name, "agent", f.AgentID, "err", err)
			// No answer now: the other folders are checked in the background too, rather
			// than each waiting for its own timeout.
			left = append(left, folders[n:]...)
			return left, problemsOrNil(problems)
		default:
			d.log.Info("agent checked", "folder", f.Name, "agent", f.AgentID, "name", agent.Name)
		}
	}
	return nil, problemsOrNil(problems)
}

func problemsOrNil(l config.ErrorList) error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}

// preflightLater checks the folders left unchecked at start until each got an answer. A
// configuration problem found then stops the daemon through fatal.
func (d *Daemon) preflightLater(ctx context.Context, cfg *config.Config, left []int,
	fatal func(error)) {
	for attempt := 1; len(left) > 0; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(mosaic.Backoff(preflightBase, preflightMax, attempt, 0.2)):
		}
		var err error
		left, err = d.preflight(ctx, cfg, left)
		if err != nil && ctx.Err() == nil {
			fatal(err)
			return
		}
	}
}

// creditsLoop keeps the recorded credit balance fresh for status, the dashboard and /metrics.
func (d *Daemon) creditsLoop(ctx context.Context) {
	for {
		rec, err := pipeline.RefreshCredits(ctx, d.client, d.store, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("could not read the credit balance from Mosaic", "err", err)
		case err == nil:
			d.log.Debug("credit balance", "credits", rec.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(creditsEvery):
		}
	}
}

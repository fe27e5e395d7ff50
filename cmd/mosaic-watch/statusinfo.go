package main

// What `status` and `explain` read beside the jobs: the daemon's last failed reload and the
// daily run limits.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/daemon"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// reloadFailure reads the last failed reload of cfg's daemon (on this host), or nil.
func reloadFailure(ctx context.Context, st store.Store, cfg *config.Config) *jobview.ReloadFailure {
	raw, err := st.GetMeta(ctx, daemon.HostMetaKey(cfg, daemon.ReloadErrorKey))
	if err != nil || raw == "" {
		return nil
	}
	var r daemon.ReloadError
	if json.Unmarshal([]byte(raw), &r) != nil || r.Error == "" {
		return nil
	}
	return &jobview.ReloadFailure{At: r.At, Error: r.Error}
}

// runLimits computes the daily run limits of cfg from the run starts the store holds.
func runLimits(ctx context.Context, st store.Store, cfg *config.Config, now time.Time) (
	[]jobview.RunLimit, error) {
	perFolder := map[string]int{}
	limited := cfg.Limits.MaxRunsPerDay > 0
	for _, f := range cfg.Folders {
		perFolder[f.Input] = f.MaxRunsPerDay
		limited = limited || f.MaxRunsPerDay > 0
	}
	if !limited {
		return nil, nil
	}
	starts, err := st.RunsStartedSince(ctx, now.Add(-pipeline.BudgetWindow))
	if err != nil {
		return nil, err
	}
	global, folders := pipeline.DailyBudgets(starts, cfg.Limits.MaxRunsPerDay, perFolder, now)
	var out []jobview.RunLimit
	add := func(scope string, b pipeline.RunBudget) {
		l := jobview.RunLimit{Scope: scope, Limit: b.Limit, Used: b.Used, Reached: b.Reached()}
		if l.Reached {
			until := b.Next
			l.Until = &until
		}
		out = append(out, l)
	}
	if global.Limit > 0 {
		add("all folders", global)
	}
	for _, f := range cfg.Folders {
		if b, ok := folders[f.Input]; ok {
			add("folder "+f.Name, b)
		}
	}
	return out, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

func cmdRetry(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "retry", "--config FILE (JOB | PATH | --failed) [--new-run]", `
Make failed jobs, and jobs that need attention, run again, without billing a second run for a
file: a run that failed or was cancelled on Mosaic is resumed (only its failed or cancelled
nodes run again), a run blocked for credits is resumed (add credits first), a run that is still
fine is followed again, a finished run's outputs are downloaded again, and other jobs retry the
step that failed. A skipped job (say, a file that was gone while its share was away) is
looked at again when named by JOB or PATH; --failed leaves skipped jobs alone.

A job whose run is unknown (the answer to its start was lost and mosaic-watch could not tell
which run is its own) or gone from Mosaic can only be processed again by a new run, which bills
one: check the candidate runs on the Mosaic dashboard, then use --new-run for that job.
Works while the daemon runs: it picks the jobs up within a second or two.`)
	configPath := configFlag(fs)
	failed := fs.Bool("failed", false, "retry every failed job and every job that needs attention")
	newRun := fs.Bool("new-run", false,
		"start a new run for JOB or PATH even if it had one (bills a new run)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *failed == (fs.NArg() == 1) || fs.NArg() > 1 {
		return usagef("retry: give exactly one of JOB, PATH or --failed")
	}
	if *failed && *newRun {
		return usagef("retry: --new-run bills a run per job, so it takes one JOB or PATH, " +
			"not --failed")
	}
	cfg, err := loadConfigFlag(env, "retry", *configPath)
	if err != nil {
		return err
	}
	st, err := openStoreForCLI(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	var jobs []store.Job
	if *failed {
		stuck := []store.Status{store.StatusFailed, store.StatusAttention}
		jobs, err = st.List(ctx, store.Filter{Status: stuck, Limit: 100000})
	} else {
		jobs, err = findJobs(ctx, cfg, st, fs.Arg(0))
	}
	if err != nil {
		return err
	}
	prepare := pipeline.PrepareRetry
	if *newRun {
		prepare = pipeline.PrepareNewRun
	}
	names := jobview.Names(cfg.FolderNames())
	n, needNew := 0, 0
	for i := range jobs {
		j := &jobs[i]
		what, err := prepare(j, time.Now())
		if err != nil {
			switch {
			case errors.Is(err, pipeline.ErrNeedsNewRun):
				needNew++
				fmt.Fprintf(env.stdout, "#%d %s/%s: not retried: %s\n", j.ID,
					shown(names.Of(j.Folder)), shown(j.RelPath), shown(err.Error()))
			case !*failed:
				fmt.Fprintf(env.stdout, "#%d %s: %s\n", j.ID, shown(j.RelPath), shown(err.Error()))
			}
			continue
		}
		if err := st.Reopen(ctx, j, "retry requested: "+what); errors.Is(err, store.ErrChanged) {
			fmt.Fprintf(env.stdout, "#%d %s: changed meanwhile (retried already?); left alone\n",
				j.ID, shown(j.RelPath))
			continue
		} else if err != nil {
			return fmt.Errorf("job %d: %w", j.ID, err)
		}
		n++
		fmt.Fprintf(env.stdout, "#%d %s/%s: %s\n", j.ID, shown(names.Of(j.Folder)), shown(j.RelPath),
			shown(what))
	}
	fmt.Fprintf(env.stdout, "%d job(s) queued again\n", n)
	if needNew > 0 {
		fmt.Fprintf(env.stdout, "%d job(s) need a new run: mosaic-watch retry --config FILE "+
			"--new-run JOB (bills a run each)\n", needNew)
	}
	return nil
}

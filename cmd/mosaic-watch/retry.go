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
	fs := newFlags(env, "retry", "--config FILE (JOB | PATH | --failed)", `
Make failed jobs, and jobs that need attention, run again. A job whose Mosaic run failed, was
cancelled or is gone starts a NEW run (this costs credits, which is why the daemon never does
it on its own). A run blocked for credits is resumed (add credits first), a run that is still
fine is followed again, a finished run's outputs are downloaded again, and other jobs retry
the step that failed. A skipped job (say, a file that was gone while its share was away) is
looked at again when named by JOB or PATH; --failed leaves skipped jobs alone.
Works while the daemon runs: it picks the jobs up within a second or two.`)
	configPath := configFlag(fs)
	failed := fs.Bool("failed", false, "retry every failed job and every job that needs attention")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *failed == (fs.NArg() == 1) || fs.NArg() > 1 {
		return usagef("retry: give exactly one of JOB, PATH or --failed")
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
	names := jobview.Names(cfg.FolderNames())
	n := 0
	for i := range jobs {
		j := &jobs[i]
		what, err := pipeline.PrepareRetry(j, time.Now())
		if err != nil {
			if !*failed {
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
	return nil
}

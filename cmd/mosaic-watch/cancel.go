package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

func cmdCancel(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "cancel", "--config FILE (JOB | PATH)", `
Cancel the Mosaic run of a job (or of every job of a file or sub-folder) that is running, so
it stops using credits. The cancel is recorded in the job's history and the daemon then marks
the job failed; 'mosaic-watch retry' resumes the same run later if wanted. A job whose run
start is not confirmed yet cannot be cancelled until its run is known.
Works while the daemon runs.`)
	configPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("cancel: give exactly one JOB or PATH")
	}
	cfg, err := loadConfigFlag(env, "cancel", *configPath)
	if err != nil {
		return err
	}
	st, err := openStoreForCLI(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	jobs, err := findJobs(ctx, cfg, st, fs.Arg(0))
	if err != nil {
		return err
	}
	client, err := mosaic.New(mosaic.Options{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, UserAgent: "mosaic-watch/" + version,
	})
	if err != nil {
		return err
	}
	names := jobview.Names(cfg.FolderNames())
	cancelled, failures := 0, 0
	for i := range jobs {
		j := &jobs[i]
		if len(jobs) > 1 && !j.Status.Open() {
			continue // a path's finished jobs: nothing to say about each
		}
		what, err := pipeline.CancelRun(ctx, st, client, j, time.Now())
		if err != nil {
			failures++
			fmt.Fprintf(env.stdout, "#%d %s/%s: %v\n", j.ID, names.Of(j.Folder), j.RelPath, err)
			continue
		}
		cancelled++
		fmt.Fprintf(env.stdout, "#%d %s/%s: %s\n", j.ID, names.Of(j.Folder), j.RelPath, what)
	}
	if cancelled == 0 {
		if failures == 0 {
			return fmt.Errorf("no job of %s has a run in progress", fs.Arg(0))
		}
		return fmt.Errorf("nothing was cancelled")
	}
	return nil
}

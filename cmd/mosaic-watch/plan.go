package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/backlog"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

// plan is what `plan` prints (--json prints it as is).
type plan struct {
	Config   string       `json:"config"`
	Warnings []string     `json:"warnings"`
	Folders  []folderPlan `json:"folders"`
	Start    fileCount    `json:"start"` // over all folders
	Limits   []string     `json:"limits,omitempty"`
}

type fileCount struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

func (c *fileCount) add(size int64) { c.Files++; c.Bytes += size }

type folderPlan struct {
	Name  string `json:"name"`
	Input string `json:"input"`
	Error string `json:"error,omitempty"` // the folder could not be listed
	// FirstWatch is true when the daemon has never watched the folder: existing_files decides.
	FirstWatch bool `json:"first_watch"`
	// Videos are every video in the folder the watcher picks up; Start those a start would
	// process now.
	Videos fileCount `json:"videos"`
	Start  fileCount `json:"start"`
	// Held wait for `approve` (existing_files: confirm); Ignored are never processed
	// (existing_files: ignore).
	Held       fileCount      `json:"waiting_for_approval"`
	Existing   fileCount      `json:"ignored_existing"`
	Done       fileCount      `json:"done"`
	InProgress fileCount      `json:"in_progress"` // open or waiting jobs
	Stopped    fileCount      `json:"failed_or_attention"`
	Skipped    fileCount      `json:"skipped"`
	Ignored    map[string]int `json:"ignored"` // by reason (hidden, partial download, ...)
	StartFiles []string       `json:"start_files"`
}

func cmdPlan(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "plan", "--config FILE [--json]", `
A dry run: list, for each folder, the videos a start would process now (count and size), those
already done or in progress, those that would wait for approval (existing_files: confirm),
and the files that are ignored, by reason. It also prints the warnings 'validate' prints.

Nothing is changed: Mosaic is not contacted and the state database is only read (if there is
one yet). Run it before pointing mosaic-watch at a folder that already holds videos: each run
costs credits.`)
	configPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print machine-readable JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("plan: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfigFlag(env, "plan", *configPath)
	if err != nil {
		return err
	}
	p, err := makePlan(ctx, cfg, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.stdout, p)
	}
	printPlan(env.stdout, p)
	return nil
}

func makePlan(ctx context.Context, cfg *config.Config, now time.Time) (*plan, error) {
	st, err := openStoreReadOnlyIfAny(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if st != nil {
		defer st.Close()
	}
	p := &plan{Config: cfg.File, Warnings: append([]string{}, cfg.Warnings...)}
	var jobs store.Store // nil without a database (a nil *SQLite would not be a nil Store)
	if st != nil {
		jobs = st
	}
	for _, f := range cfg.Folders {
		fp, err := planFolder(ctx, cfg, jobs, f)
		if err != nil {
			return nil, err
		}
		p.Start.Files += fp.Start.Files
		p.Start.Bytes += fp.Start.Bytes
		p.Folders = append(p.Folders, fp)
	}
	if st != nil {
		limits, err := runLimits(ctx, st, cfg, now)
		if err != nil {
			return nil, err
		}
		for _, l := range limits {
			p.Limits = append(p.Limits, fmt.Sprintf("%s: at most %d runs in 24 hours, %d used now",
				l.Scope, l.Limit, l.Used))
		}
	} else {
		if n := cfg.Limits.MaxRunsPerDay; n > 0 {
			p.Limits = append(p.Limits, fmt.Sprintf("all folders: at most %d runs in 24 hours", n))
		}
		for _, f := range cfg.Folders {
			if f.MaxRunsPerDay > 0 {
				p.Limits = append(p.Limits, fmt.Sprintf("folder %s: at most %d runs in 24 hours",
					f.Name, f.MaxRunsPerDay))
			}
		}
	}
	return p, nil
}

// planFolder sorts the folder's files the way the daemon would treat them now. st may be nil.
func planFolder(ctx context.Context, cfg *config.Config, st store.Store, f config.Folder) (
	folderPlan, error) {
	fp := folderPlan{Name: f.Name, Input: f.Input, Ignored: map[string]int{}, StartFiles: []string{}}
	known := map[string][]store.Job{}
	var manifest *backlog.Manifest
	approved := false
	if st != nil {
		jobs, err := st.List(ctx, store.Filter{Folder: f.Input, Limit: 1 << 30})
		if err != nil {
			return fp, err
		}
		for _, j := range jobs {
			known[j.RelPath] = append(known[j.RelPath], j)
		}
		if manifest, err = backlog.Load(ctx, st, f.Input); err != nil {
			return fp, err
		}
		if approved, err = backlog.Approved(ctx, st, f.Input); err != nil {
			return fp, err
		}
	}
	fp.FirstWatch = manifest == nil
	if fp.FirstWatch { // what the first watch would decide
		m, err := backlog.Survey(ctx, f, cfg.Limits.BacklogConfirmOver, time.Now())
		if err != nil {
			fp.Error = err.Error()
			return fp, nil
		}
		manifest = m
	}
	err := watcher.Survey(ctx, f.WatchRoot(), func(e watcher.Entry) error {
		if e.Match.Candidate {
			fp.Videos.add(e.Size)
		} else {
			reason := e.Match.Reason
			if e.Dir {
				reason += " (folders)"
			}
			fp.Ignored[reason]++
			return nil
		}
		var job *store.Job
		for i, j := range known[e.Rel] {
			if j.Size == e.Size && j.ModTime.Equal(e.ModTime) {
				job = &known[e.Rel][i]
				break
			}
		}
		if job != nil {
			switch {
			case job.Status == store.StatusDone:
				fp.Done.add(e.Size)
			case job.Status == store.StatusWaiting &&
				strings.HasPrefix(job.LastError, pipeline.WaitApproval):
				fp.Held.add(e.Size)
			case job.Status.Open() || job.Status == store.StatusWaiting:
				fp.InProgress.add(e.Size)
			case job.Status == store.StatusSkipped:
				fp.Skipped.add(e.Size)
			default:
				fp.Stopped.add(e.Size)
			}
			return nil
		}
		switch d, _ := manifest.Lookup(e.Rel, e.Size, e.ModTime); {
		case d == backlog.Ignore:
			fp.Existing.add(e.Size)
		case d == backlog.Hold && !approved:
			fp.Held.add(e.Size)
		default:
			fp.Start.add(e.Size)
			fp.StartFiles = append(fp.StartFiles, e.Rel)
		}
		return nil
	})
	if err != nil {
		fp.Error = err.Error()
	}
	sort.Strings(fp.StartFiles)
	return fp, nil
}

func printPlan(w io.Writer, p *plan) {
	fmt.Fprintf(w, "Plan for %s (nothing is started; Mosaic is not contacted)\n", p.Config)
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	for _, f := range p.Folders {
		fmt.Fprintf(w, "\nFolder %s (%s)", f.Name, f.Input)
		if f.FirstWatch {
			fmt.Fprint(w, ", never watched yet: existing_files applies")
		}
		fmt.Fprintln(w)
		if f.Error != "" {
			fmt.Fprintf(w, "  cannot list it: %s\n", f.Error)
			continue
		}
		line := func(label string, c fileCount) {
			if c.Files > 0 {
				fmt.Fprintf(w, "  %-24s %d videos, %s\n", label, c.Files, humanSize(c.Bytes))
			}
		}
		fmt.Fprintf(w, "  %-24s %d, %s\n", "videos:", f.Videos.Files, humanSize(f.Videos.Bytes))
		fmt.Fprintf(w, "  %-24s %d videos, %s\n", "would start now:", f.Start.Files,
			humanSize(f.Start.Bytes))
		line("would wait for approve:", f.Held)
		line("ignored (existing):", f.Existing)
		line("already done:", f.Done)
		line("in progress:", f.InProgress)
		line("failed or attention:", f.Stopped)
		line("skipped:", f.Skipped)
		if len(f.Ignored) > 0 {
			var parts []string
			for _, reason := range slices.Sorted(maps.Keys(f.Ignored)) {
				parts = append(parts, fmt.Sprintf("%d %s", f.Ignored[reason], reason))
			}
			fmt.Fprintf(w, "  %-24s %s\n", "not picked up:", strings.Join(parts, ", "))
		}
		if f.Held.Files > 0 {
			fmt.Fprintf(w, "  (after the first %d start: `mosaic-watch approve %s` lets the rest start)\n",
				f.Start.Files, f.Name)
		}
	}
	for _, l := range p.Limits {
		fmt.Fprintf(w, "\nDaily run limit, %s\n", l)
	}
	fmt.Fprintf(w, "\nIn total %d videos (%s) would start now.\n", p.Start.Files,
		humanSize(p.Start.Bytes))
}

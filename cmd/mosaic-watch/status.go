package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

func cmdStatus(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "status", "--config FILE [--json] [--all] [PATH | JOB]", `
Show what the daemon is doing: jobs counted by state for each folder, the jobs in progress
with their step, the jobs that failed or need attention with the reason, and the latest
finished ones with their outputs. Works while the daemon runs.

With a PATH (a file's path, absolute or relative to its input folder, or a sub-folder) or a
JOB number, print the full history of that file instead.

States: active (being worked on), retrying (after a temporary error; shows when), attention
(a person must act; the reason says what), failed (permanent; the reason says why), done,
skipped (superseded by a newer version of the file, a duplicate of processed content, or gone).`)
	cfgPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print machine-readable JSON")
	all := fs.Bool("all", false, "list every job, not only the latest finished ones")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usagef("status: give at most one PATH or JOB")
	}
	cfg, err := loadConfigFlag(env, "status", *cfgPath)
	if err != nil {
		return err
	}
	st, err := openStoreForCLI(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if fs.NArg() == 1 {
		jobs, err := findJobs(ctx, cfg, st, fs.Arg(0))
		if err != nil {
			return err
		}
		return printHistory(ctx, env.stdout, st, cfg, jobs, *asJSON)
	}
	return printOverview(ctx, env.stdout, st, cfg, *asJSON, *all)
}

// openStoreForCLI opens the daemon's database from another process.
func openStoreForCLI(ctx context.Context, cfg *Config, readOnly bool) (*store.SQLite, error) {
	path := filepath.Join(cfg.StateDir, dbFileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no state database at %s yet: the daemon has not run with this configuration (state_dir: %s)", path, cfg.StateDir)
	}
	st, err := store.Open(ctx, path, store.Options{ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open the state database: %w", err)
	}
	return st, nil
}

// findJobs resolves a JOB number or a PATH (absolute, or relative to an input folder).
func findJobs(ctx context.Context, cfg *Config, st store.Store, arg string) ([]store.Job, error) {
	if id, err := strconv.ParseInt(strings.TrimPrefix(arg, "#"), 10, 64); err == nil {
		j, err := st.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("no job %d", id)
		}
		if err != nil {
			return nil, err
		}
		return []store.Job{*j}, nil
	}
	var out []store.Job
	for _, f := range cfg.Folders {
		rel, ok := relTo(f.Input, arg)
		if !ok {
			continue
		}
		jobs, err := st.List(ctx, store.Filter{Folder: f.Input, Path: rel, Limit: 1000})
		if err != nil {
			return nil, err
		}
		out = append(out, jobs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no job for %s (give a path inside an input folder, relative to it, or a job number)", arg)
	}
	return out, nil
}

// relTo turns arg into a slash path relative to input: absolute paths must be inside input;
// other paths are taken as relative to input.
func relTo(input, arg string) (string, bool) {
	if filepath.IsAbs(arg) {
		rel, err := filepath.Rel(input, filepath.Clean(arg))
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", false
		}
		if rel == "." {
			rel = ""
		}
		return filepath.ToSlash(rel), true
	}
	return strings.TrimSuffix(filepath.ToSlash(filepath.Clean(arg)), "/"), true
}

// jobView is a job as shown to people and scripts: no signed URLs.
type jobView struct {
	ID        int64        `json:"id"`
	Folder    string       `json:"folder"`
	Path      string       `json:"path"`
	Size      int64        `json:"size"`
	Status    store.Status `json:"status"`
	Step      store.Step   `json:"step"`
	Doing     string       `json:"doing"`
	Attempts  int          `json:"attempts"`
	NextTry   *time.Time   `json:"next_attempt_at,omitempty"`
	Error     string       `json:"error,omitempty"`
	Note      string       `json:"note,omitempty"`
	VideoID   string       `json:"video_id,omitempty"`
	RunID     string       `json:"run_id,omitempty"`
	RunStatus string       `json:"run_status,omitempty"`
	Outputs   []string     `json:"outputs,omitempty"`
	Updated   time.Time    `json:"updated_at"`
	History   []eventView  `json:"history,omitempty"`
}

type eventView struct {
	At      time.Time    `json:"at"`
	Step    store.Step   `json:"step"`
	Status  store.Status `json:"status"`
	Message string       `json:"message"`
}

func viewJob(cfg *Config, j store.Job) jobView {
	v := jobView{
		ID: j.ID, Folder: folderName(cfg, j.Folder), Path: j.RelPath, Size: j.Size, Status: j.Status, Step: j.Step,
		Doing: stepText(j), Attempts: j.Attempts, Error: j.LastError, Note: j.Note, VideoID: j.VideoID,
		RunID: j.RunID, RunStatus: j.RunStatus, Updated: j.UpdatedAt,
	}
	if j.Status == store.StatusRetrying {
		t := j.NextAttemptAt
		v.NextTry = &t
	}
	for _, o := range j.Outputs {
		if o.Path != "" {
			v.Outputs = append(v.Outputs, o.Path)
		}
	}
	return v
}

func folderName(cfg *Config, input string) string {
	for _, f := range cfg.Folders {
		if f.Input == input {
			return f.Name
		}
	}
	return input
}

// stepText says in words what an open job is doing (or did last).
func stepText(j store.Job) string {
	switch j.Step {
	case store.StepFound:
		return "hashing"
	case store.StepSettled:
		return "uploading"
	case store.StepUploaded:
		return "finalizing the upload"
	case store.StepFinalized:
		return "waiting to start the run"
	case store.StepStartingRun:
		return "starting the run"
	case store.StepRunStarted:
		if j.RunMessage != "" {
			return "running on Mosaic: " + j.RunMessage
		}
		return "running on Mosaic"
	case store.StepRunFinished:
		return "downloading outputs"
	case store.StepOutputsWritten:
		return "handling the source file"
	case store.StepSourceHandled, store.StepDone:
		return "finished"
	}
	return string(j.Step)
}

var statusOrder = []store.Status{store.StatusActive, store.StatusRetrying, store.StatusAttention, store.StatusFailed, store.StatusDone, store.StatusSkipped}

type overview struct {
	Counts    map[string]map[store.Status]int `json:"counts"`
	Active    []jobView                       `json:"active"`
	Attention []jobView                       `json:"attention"`
	Failed    []jobView                       `json:"failed"`
	Finished  []jobView                       `json:"finished"`
}

func printOverview(ctx context.Context, w io.Writer, st store.Store, cfg *Config, asJSON, all bool) error {
	byFolder, err := st.CountsByFolder(ctx)
	if err != nil {
		return err
	}
	ov := overview{Counts: make(map[string]map[store.Status]int)}
	for input, c := range byFolder {
		ov.Counts[folderName(cfg, input)] = c
	}
	list := func(limit int, s ...store.Status) ([]jobView, error) {
		jobs, err := st.List(ctx, store.Filter{Status: s, Limit: limit})
		var views []jobView
		for _, j := range jobs {
			views = append(views, viewJob(cfg, j))
		}
		return views, err
	}
	finishedLimit := 10
	if all {
		finishedLimit = 100000
	}
	if ov.Active, err = list(1000, store.StatusActive, store.StatusRetrying); err != nil {
		return err
	}
	if ov.Attention, err = list(1000, store.StatusAttention); err != nil {
		return err
	}
	if ov.Failed, err = list(1000, store.StatusFailed); err != nil {
		return err
	}
	if ov.Finished, err = list(finishedLimit, store.StatusDone, store.StatusSkipped); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ov)
	}

	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FOLDER\tACTIVE\tRETRYING\tATTENTION\tFAILED\tDONE\tSKIPPED")
	for _, f := range cfg.Folders {
		c := byFolder[f.Input]
		fmt.Fprintf(tw, "%s", f.Name)
		for _, s := range statusOrder {
			fmt.Fprintf(tw, "\t%d", c[s])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	section := func(title string, jobs []jobView, line func(v jobView) string) {
		if len(jobs) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, v := range jobs {
			fmt.Fprintf(w, "  #%-5d %s/%s  %s\n", v.ID, v.Folder, v.Path, line(v))
		}
	}
	section("In progress", ov.Active, func(v jobView) string {
		s := v.Doing
		if v.Status == store.StatusRetrying && v.NextTry != nil {
			s += fmt.Sprintf(" — attempt %d failed, retrying at %s: %s", v.Attempts, v.NextTry.Local().Format("15:04:05"), v.Error)
		}
		return s
	})
	section("Needs attention", ov.Attention, func(v jobView) string { return v.Error })
	section("Failed", ov.Failed, func(v jobView) string { return v.Error })
	section("Finished", ov.Finished, func(v jobView) string {
		if v.Status == store.StatusSkipped {
			return "skipped: " + v.Note
		}
		s := "done → " + strings.Join(v.Outputs, ", ")
		if v.Error != "" {
			s += " (" + v.Error + ")"
		}
		return s
	})
	if len(ov.Attention)+len(ov.Failed) > 0 {
		fmt.Fprintln(w, "\nRetry with: mosaic-watch retry --config FILE (JOB | PATH | --failed)")
	}
	return nil
}

func printHistory(ctx context.Context, w io.Writer, st store.Store, cfg *Config, jobs []store.Job, asJSON bool) error {
	slices.SortFunc(jobs, func(a, b store.Job) int { return int(a.ID - b.ID) })
	views := make([]jobView, 0, len(jobs))
	for _, j := range jobs {
		v := viewJob(cfg, j)
		events, err := st.History(ctx, j.ID)
		if err != nil {
			return err
		}
		for _, e := range events {
			v.History = append(v.History, eventView{At: e.At, Step: e.Step, Status: e.Status, Message: e.Message})
		}
		views = append(views, v)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	}
	for _, v := range views {
		fmt.Fprintf(w, "Job #%d  %s/%s  (%s)\n", v.ID, v.Folder, v.Path, humanSize(v.Size))
		fmt.Fprintf(w, "  state:   %s — %s\n", v.Status, v.Doing)
		if v.Error != "" {
			fmt.Fprintf(w, "  reason:  %s\n", v.Error)
		}
		if v.Note != "" {
			fmt.Fprintf(w, "  note:    %s\n", v.Note)
		}
		if v.RunID != "" {
			fmt.Fprintf(w, "  run:     %s (%s)\n", v.RunID, v.RunStatus)
		}
		for _, o := range v.Outputs {
			fmt.Fprintf(w, "  output:  %s\n", o)
		}
		fmt.Fprintln(w, "  history:")
		for _, e := range v.History {
			fmt.Fprintf(w, "    %s  %-16s %-9s %s\n", e.At.Local().Format("2006-01-02 15:04:05"), e.Step, e.Status, e.Message)
		}
		fmt.Fprintln(w)
	}
	return nil
}

func cmdRetry(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "retry", "--config FILE (JOB | PATH | --failed)", `
Make failed jobs, and jobs that need attention, run again. A job whose Mosaic run failed, was
cancelled or is gone starts a NEW run (this costs credits, which is why the daemon never does
it on its own). A run blocked for credits is resumed (add credits first), a run that is still
fine is followed again, a finished run's outputs are downloaded again, and other jobs retry
the step that failed.
Works while the daemon runs: it picks the jobs up within a second or two.`)
	cfgPath := configFlag(fs)
	failed := fs.Bool("failed", false, "retry every failed job and every job that needs attention")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *failed == (fs.NArg() == 1) || fs.NArg() > 1 {
		return usagef("retry: give exactly one of JOB, PATH or --failed")
	}
	cfg, err := loadConfigFlag(env, "retry", *cfgPath)
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
		jobs, err = st.List(ctx, store.Filter{Status: []store.Status{store.StatusFailed, store.StatusAttention}, Limit: 100000})
	} else {
		jobs, err = findJobs(ctx, cfg, st, fs.Arg(0))
	}
	if err != nil {
		return err
	}
	n := 0
	for i := range jobs {
		j := &jobs[i]
		what, err := pipeline.PrepareRetry(j, time.Now())
		if err != nil {
			if !*failed {
				fmt.Fprintf(env.stdout, "#%d %s: %v\n", j.ID, j.RelPath, err)
			}
			continue
		}
		if err := st.Reopen(ctx, j, "retry requested: "+what); errors.Is(err, store.ErrChanged) {
			fmt.Fprintf(env.stdout, "#%d %s: changed meanwhile (retried already?); left alone\n", j.ID, j.RelPath)
			continue
		} else if err != nil {
			return fmt.Errorf("job %d: %w", j.ID, err)
		}
		n++
		fmt.Fprintf(env.stdout, "#%d %s/%s: %s\n", j.ID, folderName(cfg, j.Folder), j.RelPath, what)
	}
	fmt.Fprintf(env.stdout, "%d job(s) queued again\n", n)
	return nil
}

// humanSize writes a byte count for people (one formatter for the whole binary).
var humanSize = pipeline.FormatBytes

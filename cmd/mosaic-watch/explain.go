package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/backlog"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/store"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

// explanation is what `explain` prints (--json prints it as is).
type explanation struct {
	Path   string `json:"path"`
	Folder string `json:"folder,omitempty"` // the folder's name; "" when in none
	Input  string `json:"input,omitempty"`
	Rel    string `json:"rel,omitempty"` // relative to the input folder
	// OutputOf names the folder whose output folder holds the path, when it is not an input.
	OutputOf string                 `json:"output_of,omitempty"`
	Exists   bool                   `json:"exists"`
	Rule     *watcher.Match         `json:"rule,omitempty"` // whether the watcher picks it up, and why
	Ready    *readinessView         `json:"readiness,omitempty"`
	Existing string                 `json:"existing_files,omitempty"` // first-watch decision, if any
	Jobs     []jobview.Job          `json:"jobs"`
	Next     string                 `json:"next"` // what happens next, in words
	Reload   *jobview.ReloadFailure `json:"config_reload_failed,omitempty"`
}

type readinessView struct {
	Size            int64     `json:"size"`
	Modified        time.Time `json:"modified"`
	UnchangedFor    string    `json:"unchanged_for"`
	Settle          string    `json:"settle"`
	SettleRemaining string    `json:"settle_remaining"` // "0s" once unchanged for the window
	Complete        bool      `json:"complete"`         // opens, and MP4/MOV/M4V boxes include moov
	Problem         string    `json:"problem,omitempty"`
}

func cmdExplain(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "explain", "--config FILE [--json] PATH", `
Say what happens to one file and why: which folder it belongs to (or that it is in none), the
rule that decides whether it is picked up (an include or exclude pattern, or a built-in rule:
hidden, partial download, temporary file, NAS clutter, sync-tool file, not a video type), its
readiness (unchanged since when, settle time left, MP4 moov box present), its jobs with their
state, reason and history, and what happens next. PATH is a file's path (absolute, relative to
the current folder, or relative to its input folder).

Reads the state database without changing it, so it works while the daemon runs.`)
	configPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print machine-readable JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("explain: give exactly one PATH")
	}
	cfg, configErr := loadConfigLenient(env, "explain", *configPath)
	if cfg == nil {
		return configErr
	}
	ex, err := explain(ctx, cfg, fs.Arg(0), time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(env.stdout, ex); err != nil {
			return err
		}
	} else {
		printExplanation(env.stdout, ex)
	}
	return configErr
}

// locate finds the configured folder holding arg.
func locate(cfg *config.Config, arg string) (f config.Folder, abs, rel string, ok bool) {
	abs, _ = filepath.Abs(arg)
	for _, f := range cfg.Folders {
		if r, in := relTo(f.Input, abs); in && r != "" {
			return f, abs, r, true
		}
	}
	if !filepath.IsAbs(arg) { // relative to an input folder
		for _, f := range cfg.Folders {
			p := filepath.Join(f.Input, arg)
			if _, err := os.Lstat(p); err == nil {
				r, _ := relTo(f.Input, p)
				return f, p, r, true
			}
		}
	}
	return config.Folder{}, abs, "", false
}

func explain(ctx context.Context, cfg *config.Config, arg string, now time.Time) (
	*explanation, error) {
	f, abs, rel, found := locate(cfg, arg)
	ex := &explanation{Path: abs, Jobs: []jobview.Job{}}
	fi, statErr := os.Lstat(abs)
	ex.Exists = statErr == nil
	if !found {
		for _, o := range cfg.Folders {
			if _, in := relTo(o.Output, abs); in {
				ex.OutputOf = o.Name
			}
		}
		ex.Next = "nothing: mosaic-watch does not watch this path, it is inside no configured " +
			"input folder"
		if ex.OutputOf != "" {
			ex.Next += fmt.Sprintf(" (it is in the output folder of %s, where results are written)",
				ex.OutputOf)
		}
		return ex, nil
	}
	ex.Folder, ex.Input, ex.Rel = f.Name, f.Input, rel

	st, err := openStoreReadOnlyIfAny(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var jobs []store.Job
	var manifest *backlog.Manifest
	approved := false
	if st != nil {
		defer st.Close()
		ex.Reload = reloadFailure(ctx, st, cfg)
		if jobs, err = st.JobsAt(ctx, f.Input, rel); err != nil {
			return nil, err
		}
		if ex.Jobs, err = jobview.Histories(ctx, st, jobview.Names(cfg.FolderNames()), jobs); err != nil {
			return nil, err
		}
		if manifest, err = backlog.Load(ctx, st, f.Input); err != nil {
			return nil, err
		}
		if approved, err = backlog.Approved(ctx, st, f.Input); err != nil {
			return nil, err
		}
	}

	m := watcher.NewMatcher(f.WatchRoot())
	var match watcher.Match
	switch {
	case !ex.Exists:
	case fi.IsDir():
		match = m.Dir(rel)
	case fi.Mode()&fs.ModeSymlink != 0:
		match = watcher.Match{Reason: watcher.ReasonSymlink, Rule: "never followed"}
	case !fi.Mode().IsRegular():
		match = watcher.Match{Reason: watcher.ReasonNotRegular}
	default:
		match = m.File(rel)
	}
	if ex.Exists {
		ex.Rule = &match
	}
	var current *store.Job // the job of the file as it is now
	if ex.Exists && fi.Mode().IsRegular() {
		for i := range jobs {
			if jobs[i].Size == fi.Size() && jobs[i].ModTime.Equal(fi.ModTime()) && current == nil {
				current = &jobs[i]
			}
		}
	}
	if ex.Exists && match.Candidate && fi.Mode().IsRegular() && current == nil {
		r, err := watcher.Inspect(abs, rel)
		if err == nil {
			unchanged := max(0, now.Sub(r.ModTime))
			rv := &readinessView{Size: r.Size, Modified: r.ModTime,
				UnchangedFor: unchanged.Round(time.Second).String(), Settle: f.Settle.String(),
				SettleRemaining: max(0, f.Settle-unchanged).Round(100 * time.Millisecond).String(),
				Complete:        r.Verdict == "", Problem: r.Verdict}
			ex.Ready = rv
		}
		if d, ok := manifest.Lookup(rel, fi.Size(), fi.ModTime()); ok {
			ex.Existing = d
		}
	}
	ex.Next = nextStep(cfg, f, ex, match, current, approved)
	return ex, nil
}

// nextStep says in words what happens to the file next.
func nextStep(cfg *config.Config, f config.Folder, ex *explanation, match watcher.Match,
	current *store.Job, approved bool) string {
	switch {
	case !ex.Exists && len(ex.Jobs) > 0:
		return "the file is gone; its jobs are listed above"
	case !ex.Exists:
		return "nothing: the file does not exist"
	case !match.Candidate:
		return "never picked up: " + match.String()
	case ex.Rule != nil && ex.Ready == nil && current == nil && len(ex.Jobs) == 0 && match.Rule == "":
		return "a folder that is watched: explain one of its files"
	case current != nil:
		return jobNext(cfg, f, current)
	case ex.Ready != nil && !ex.Ready.Complete:
		return "not picked up yet: " + ex.Ready.Problem + "; it is processed once it is complete"
	case ex.Ready != nil && ex.Ready.SettleRemaining != "0s":
		return fmt.Sprintf("still settling: picked up once it stays unchanged for %s (about %s from now)",
			f.Settle, ex.Ready.SettleRemaining)
	case ex.Existing == backlog.Ignore:
		return "never processed: it was in the folder when it was first watched, and existing_files " +
			"is ignore"
	case ex.Existing == backlog.Hold && !approved:
		return "waits for approval: it was in the folder when it was first watched (existing_files: " +
			"confirm); `mosaic-watch approve " + f.Name + "` lets it start"
	}
	return "ready: the running daemon picks it up within a settle window (or at its next start)"
}

func jobNext(cfg *config.Config, f config.Folder, j *store.Job) string {
	v := jobview.Of(jobview.Names(cfg.FolderNames()), *j)
	retry := fmt.Sprintf("`mosaic-watch retry --config %s %d`", cfg.File, j.ID)
	switch j.Status {
	case store.StatusDone:
		return fmt.Sprintf("nothing: processed (job #%d, outputs %s); it is not processed again "+
			"unless it changes", j.ID, strings.Join(v.Outputs, ", "))
	case store.StatusActive:
		return fmt.Sprintf("in progress (job #%d): %s", j.ID, v.Doing)
	case store.StatusRetrying:
		return fmt.Sprintf("in progress (job #%d): %s; retrying at %s after: %s", j.ID, v.Doing,
			j.NextAttemptAt.Local().Format(time.DateTime), j.LastError)
	case store.StatusWaiting:
		return fmt.Sprintf("waiting (job #%d): %s", j.ID, j.LastError)
	case store.StatusAttention:
		return fmt.Sprintf("nothing until a person acts (job #%d): %s; then %s", j.ID, j.LastError, retry)
	case store.StatusFailed:
		return fmt.Sprintf("nothing: it failed (job #%d): %s; %s tries again", j.ID, j.LastError, retry)
	case store.StatusSkipped:
		return fmt.Sprintf("nothing: skipped (job #%d): %s", j.ID, j.Note)
	}
	return string(j.Status)
}

// openStoreReadOnlyIfAny opens the state database read-only, or returns nil if there is none.
func openStoreReadOnlyIfAny(ctx context.Context, cfg *config.Config) (store.Store, error) {
	st, err := openStoreForCLI(ctx, cfg, true)
	if err != nil {
		if _, statErr := os.Stat(dbPath(cfg)); !cfg.Database.Shared() && errors.Is(statErr, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	return st, nil
}

func printExplanation(w io.Writer, ex *explanation) {
	fmt.Fprintf(w, "%s\n", ex.Path)
	if r := ex.Reload; r != nil {
		fmt.Fprintf(w, "  note:      the daemon's last configuration reload failed (%s); it runs its "+
			"previous configuration, which may differ from this file\n", r.At.Local().Format(time.DateTime))
	}
	if ex.Folder == "" {
		fmt.Fprintf(w, "  folder:    none\n")
	} else {
		fmt.Fprintf(w, "  folder:    %s (%s), path in it: %s\n", ex.Folder, ex.Input, ex.Rel)
	}
	if ex.Rule != nil {
		verdict := "picked up"
		if !ex.Rule.Candidate {
			verdict = "not picked up"
		}
		fmt.Fprintf(w, "  rule:      %s: %s\n", verdict, ex.Rule.String())
	}
	if r := ex.Ready; r != nil {
		fmt.Fprintf(w, "  readiness: %s, unchanged for %s (since %s); settle %s, %s left\n",
			humanSize(r.Size), r.UnchangedFor, r.Modified.Local().Format(time.DateTime), r.Settle,
			r.SettleRemaining)
		if r.Complete {
			fmt.Fprintf(w, "             complete (opens; MP4/MOV boxes include moov)\n")
		} else {
			fmt.Fprintf(w, "             not complete: %s\n", r.Problem)
		}
	}
	if ex.Existing != "" {
		fmt.Fprintf(w, "  existing:  in the folder at its first watch: %s\n", ex.Existing)
	}
	fmt.Fprintf(w, "  next:      %s\n", ex.Next)
	if len(ex.Jobs) > 0 {
		fmt.Fprintln(w)
		printHistory(w, ex.Jobs)
	}
}

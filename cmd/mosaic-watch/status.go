package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/daemon"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
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

States: active (being worked on), retrying (after a temporary error; shows when), waiting
(held on purpose until something else happens: an approval, the daily run limit, its folder
coming back into the configuration; the reason says what), attention (a person must act; the
reason says what), failed (permanent; the reason says why), done, skipped (superseded by a
newer version of the file, a duplicate of processed content, or gone).

It also says when the daemon's last configuration reload failed (it then runs the configuration
it had before), and how much of each daily run limit is used. A configuration file with
problems is reported (exit code 2), and the jobs are still shown from the state database.`)
	configPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print machine-readable JSON")
	all := fs.Bool("all", false, "list every job, not only the latest finished ones")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usagef("status: give at most one PATH or JOB")
	}
	cfg, configErr := loadConfigLenient(env, "status", *configPath)
	if cfg == nil {
		return configErr
	}
	st, err := openStoreForCLI(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	names := jobview.Names(cfg.FolderNames())
	if fs.NArg() == 1 {
		jobs, err := findJobs(ctx, cfg, st, fs.Arg(0))
		if err != nil {
			return err
		}
		views, err := jobview.Histories(ctx, st, names, jobs)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := printJSON(env.stdout, views); err != nil {
				return err
			}
			return configErr
		}
		printHistory(env.stdout, views)
		return configErr
	}
	ov, err := jobview.Load(ctx, st, names, *all)
	if err != nil {
		return err
	}
	rec, running, err := daemon.ReadHealth(ctx, st, cfg)
	if err != nil {
		return err
	}
	for input, why := range rec.Degraded {
		if ov.Degraded == nil {
			ov.Degraded = make(map[string]string)
		}
		ov.Degraded[names.Of(input)] = why
	}
	ov.ConfigReload = reloadFailure(ctx, st, cfg)
	if ov.RunLimits, err = runLimits(ctx, st, cfg, time.Now()); err != nil {
		return err
	}
	if cfg.Database.Shared() {
		if ov.Instances, err = jobview.LiveInstances(ctx, st, time.Now(), daemon.InstanceLive); err != nil {
			return err
		}
	}
	if *asJSON {
		if err := printJSON(env.stdout, ov); err != nil {
			return err
		}
		return configErr
	}
	printOverview(env.stdout, cfg, ov)
	printInstances(env.stdout, cfg, ov.Instances)
	printDegraded(env.stdout, cfg, rec, running)
	if err := printAccount(ctx, env.stdout, cfg, st); err != nil {
		return err
	}
	return configErr
}

// loadConfigLenient loads the --config file; when it has problems it still returns enough to
// read the state database (the daemon keeps running its previous configuration after a bad
// edit), with the problems as the error to exit with.
func loadConfigLenient(env *cliEnv, cmd, path string) (*config.Config, error) {
	cfg, err := loadConfigFlag(env, cmd, path)
	var problems config.ErrorList
	if err == nil || !errors.As(err, &problems) {
		return cfg, err
	}
	abs, _ := filepath.Abs(path)
	if _, statErr := os.Stat(abs); statErr != nil {
		return nil, err
	}
	fmt.Fprintf(env.stderr, "warning: %s has problems (listed at the end); showing what the state "+
		"database holds\n\n", path)
	return config.StoreOf(abs, env.lookupEnv), err
}

// printAccount prints the credit balance the daemon last read and the folders whose agent
// another client also runs (a lost run-start answer for those waits for a person).
func printAccount(ctx context.Context, w io.Writer, cfg *config.Config, st store.Store) error {
	if c, err := pipeline.LoadCredits(ctx, st); err != nil {
		return err
	} else if c != nil {
		fmt.Fprintf(w, "\nCredits: %s (as of %s)\n", c, c.At.Local().Format("2006-01-02 15:04"))
	}
	for _, f := range cfg.Folders {
		s, err := pipeline.LoadSharedAgent(ctx, st, f.AgentID)
		if err != nil {
			return err
		}
		if s != nil {
			fmt.Fprintf(w, "\nShared agent: folder %s's agent %s also has runs mosaic-watch did not "+
				"start (first seen %s). When the answer to one of its run starts is lost, the file "+
				"waits for a person instead of a guess.\n", f.Name, f.AgentID,
				s.Since.Local().Format("2006-01-02 15:04"))
		}
	}
	return nil
}

// printDegraded lists the folders whose work waits, as the running daemon last recorded them.
func printDegraded(w io.Writer, cfg *config.Config, rec daemon.HealthRecord, running bool) {
	if !running || len(rec.Degraded) == 0 {
		return
	}
	fmt.Fprintf(w, "\nDegraded folders (their work waits; as the daemon saw them at %s):\n",
		rec.At.Local().Format("15:04:05"))
	for _, f := range cfg.Folders {
		if why := rec.Degraded[f.Input]; why != "" {
			fmt.Fprintf(w, "  %s: %s\n", shown(f.Name), shown(why))
		}
	}
	if age := time.Since(rec.At); age > 3*time.Minute {
		fmt.Fprintf(w, "  (no news from the daemon for %s: is it still running?)\n",
			age.Round(time.Minute))
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// dbPath is where the daemon keeps its job database.
func dbPath(cfg *config.Config) string { return filepath.Join(cfg.StateDir, daemon.DBFileName) }

// openStoreForCLI opens the daemon's job store from another process: the PostgreSQL database
// of database.url, or the SQLite file in state_dir.
func openStoreForCLI(ctx context.Context, cfg *config.Config, readOnly bool) (store.Store, error) {
	if !cfg.Database.Shared() {
		path := dbPath(cfg)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no state database at %s yet: the daemon has not run with this "+
				"configuration (state_dir: %s)", path, cfg.StateDir)
		}
	}
	st, err := daemon.OpenStore(ctx, cfg, nil, readOnly)
	if err != nil {
		return nil, fmt.Errorf("open the job store: %w", err)
	}
	return st, nil
}

// findJobs resolves a JOB number or a PATH (absolute, or relative to an input folder).
func findJobs(ctx context.Context, cfg *config.Config, st store.Store, arg string) (
	[]store.Job, error) {
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
		return nil, fmt.Errorf("no job for %s (give a path inside an input folder, relative to it, "+
			"or a job number)", arg)
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

// printOverview prints the overview for people.
func printOverview(w io.Writer, cfg *config.Config, ov *jobview.Overview) {
	if r := ov.ConfigReload; r != nil {
		fmt.Fprintf(w, "The last configuration reload failed (%s); the daemon runs the configuration "+
			"it had before until the file is fixed:\n", r.At.Local().Format(time.DateTime))
		for _, line := range strings.Split(r.Error, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	header := "FOLDER"
	for _, s := range jobview.States {
		header += "\t" + strings.ToUpper(string(s))
	}
	fmt.Fprintln(tw, header)
	rows := make([][2]string, 0, len(cfg.Folders)) // name, input
	for _, f := range cfg.Folders {
		rows = append(rows, [2]string{f.Name, f.Input})
	}
	if len(rows) == 0 { // the configuration could not be read: the database's folders
		for _, input := range slices.Sorted(maps.Keys(ov.CountsByInput)) {
			rows = append(rows, [2]string{input, input})
		}
	}
	for _, r := range rows {
		c := ov.CountsByInput[r[1]]
		fmt.Fprintf(tw, "%s", shown(r[0]))
		for _, s := range jobview.States {
			fmt.Fprintf(tw, "\t%d", c[s])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, l := range ov.RunLimits {
		fmt.Fprintf(w, "\nDaily run limit (%s): %d of %d runs started in the last 24 hours", l.Scope,
			l.Used, l.Limit)
		if l.Reached && l.Until != nil {
			fmt.Fprintf(w, " — reached: new runs wait until %s", l.Until.Local().Format(time.DateTime))
		}
		fmt.Fprintln(w)
	}
	section := func(title string, jobs []jobview.Job, line func(v jobview.Job) string) {
		if len(jobs) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, v := range jobs {
			fmt.Fprintf(w, "  #%-5d %s/%s  %s\n", v.ID, shown(v.Folder), shown(v.Path), shown(line(v)))
		}
	}
	section("In progress", ov.Active, func(v jobview.Job) string {
		s := v.Doing
		if v.Status == store.StatusRetrying && v.NextTry != nil {
			s += fmt.Sprintf(" — attempt %d failed, retrying at %s: %s", v.Attempts,
				v.NextTry.Local().Format("15:04:05"), v.Error)
		}
		return s
	})
	section("Waiting", ov.Waiting, func(v jobview.Job) string { return v.Error })
	section("Needs attention", ov.Attention, func(v jobview.Job) string { return v.Error })
	section("Failed", ov.Failed, func(v jobview.Job) string { return v.Error })
	section("Finished", ov.Finished, func(v jobview.Job) string {
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
}

// printHistory prints jobs with their history for people.
func printHistory(w io.Writer, views []jobview.Job) {
	for _, v := range views {
		fmt.Fprintf(w, "Job #%d  %s/%s  (%s)\n", v.ID, shown(v.Folder), shown(v.Path), humanSize(v.Size))
		fmt.Fprintf(w, "  state:   %s — %s\n", v.Status, shown(v.Doing))
		if v.Error != "" {
			fmt.Fprintf(w, "  reason:  %s\n", shown(v.Error))
		}
		if v.Note != "" {
			fmt.Fprintf(w, "  note:    %s\n", shown(v.Note))
		}
		if v.RunID != "" {
			fmt.Fprintf(w, "  run:     %s (%s)\n", v.RunID, v.RunStatus)
		}
		for _, o := range v.Outputs {
			fmt.Fprintf(w, "  output:  %s\n", shown(o))
		}
		fmt.Fprintln(w, "  history:")
		for _, e := range v.History {
			fmt.Fprintf(w, "    %s  %-16s %-9s %s\n", e.At.Local().Format("2006-01-02 15:04:05"),
				e.Step, e.Status, shown(e.Message))
		}
		fmt.Fprintln(w)
	}
}

// humanSize writes a byte count for people (one formatter for the whole binary).
var humanSize = pipeline.FormatBytes

// printInstances lists the daemons sharing the PostgreSQL job store and the jobs each holds.
func printInstances(w io.Writer, cfg *config.Config, instances []jobview.Instance) {
	if !cfg.Database.Shared() {
		return
	}
	fmt.Fprintf(w, "\nInstances on %s:", cfg.Database.Redacted())
	if len(instances) == 0 {
		fmt.Fprintf(w, " none running (no heartbeat in the last %s)\n", daemon.InstanceLive)
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tPID\tVERSION\tSINCE\tHEARTBEAT\tJOBS HELD")
	for _, in := range instances {
		held := "none"
		if len(in.Jobs) > 0 {
			ids := make([]string, len(in.Jobs))
			for i, id := range in.Jobs {
				ids[i] = fmt.Sprintf("#%d", id)
			}
			held = strings.Join(ids, " ")
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s ago\t%s\n", in.Host, in.PID, in.Version,
			in.StartedAt.Local().Format(time.DateTime), time.Since(in.HeartbeatAt).Round(time.Second), held)
	}
	tw.Flush()
}

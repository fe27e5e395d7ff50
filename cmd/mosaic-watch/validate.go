package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/daemon"
	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

func cmdValidate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "validate", "--config FILE [--online] | --schema", `
Check a configuration file without starting anything: unknown keys, wrong types, missing
folders or agent ids, outputs inside inputs and the like are reported with the file, line and
key. Prints the folders as the daemon will see them, with every default filled in.
A running daemon validates the same way when the file changes, and keeps its configuration
when the file does not validate.

With --online it also asks Mosaic about each folder's agent, as the daemon does at every
start: the agent exists and the API key may read it, every update_params and ignore_nodes key
is one of its nodes, and it takes exactly one video (agents with several video inputs and
generation-only agents are not supported yet). It also shows the account's credit balance.
With database.url it connects to the PostgreSQL database and checks that its schema is
mosaic-watch's and not newer than this binary (an empty database is fine: the daemon creates
the tables at its first start).
Exit code 0 when valid, 2 when not, 1 when Mosaic could not be asked.

--schema prints the configuration's JSON Schema (draft 2020-12) instead, for editors: save it
and name it in the file's first line, "# yaml-language-server: $schema=PATH".`)
	configPath := configFlag(fs)
	online := fs.Bool("online", false, "also check each folder's agent with Mosaic")
	schema := fs.Bool("schema", false, "print the JSON Schema of the configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *schema {
		_, err := env.stdout.Write(config.JSONSchema())
		return err
	}
	cfg, err := loadConfigFlag(env, "validate", *configPath)
	if err != nil {
		return err
	}
	if *online {
		if err := validateOnline(ctx, env, cfg); err != nil {
			return err
		}
	}
	out := env.stdout
	fmt.Fprintf(out, "%s is valid.\n\n", cfg.File)
	fmt.Fprintf(out, "Mosaic API:  %s (uploads via the %q endpoints), polling every %s\n",
		mosaic.RedactURL(cfg.BaseURL), cfg.UploadAPI, cfg.PollInterval)
	fmt.Fprintf(out, "State:       %s\n", cfg.StateDir)
	if cfg.Database.Shared() {
		fmt.Fprintf(out, "Jobs:        PostgreSQL %s (shared with the daemons on the same database)\n",
			cfg.Database.Redacted())
	} else {
		fmt.Fprintf(out, "Jobs:        SQLite in state_dir\n")
	}
	fmt.Fprintf(out, "Limits:      %d uploads, %d runs, %d downloads at once\n",
		cfg.Limits.Uploads, cfg.Limits.ActiveRuns, cfg.Limits.Downloads)
	perDay := "no limit"
	if cfg.Limits.MaxRunsPerDay > 0 {
		perDay = fmt.Sprintf("at most %d", cfg.Limits.MaxRunsPerDay)
	}
	fmt.Fprintf(out, "Runs:        %s per 24 hours; %d videos already in a new folder start "+
		"without approve\n\n", perDay, cfg.Limits.BacklogConfirmOver)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, f := range cfg.Folders {
		fmt.Fprintf(tw, "Folder %q\n", f.Name)
		fmt.Fprintf(tw, "  input\t%s (recursive: %t, mode: %s, settle: %s)\n",
			f.Input, f.Recursive, f.Mode, f.Settle)
		fmt.Fprintf(tw, "  output\t%s\n", f.Output)
		fmt.Fprintf(tw, "  agent\t%s\n", f.AgentID)
		success := f.AfterSuccess.String()
		if f.AfterSuccess == config.Move {
			success += " to " + f.AfterSuccessMoveTo
		}
		failure := f.AfterFailure.String()
		if f.AfterFailure == config.Move {
			failure += " to " + f.AfterFailureMoveTo
		}
		fmt.Fprintf(tw, "  source\tafter success: %s; after failure: %s; on change during "+
			"its run: %s\n", success, failure, f.OnSourceChange)
		existing := string(f.ExistingFiles)
		if f.MaxRunsPerDay > 0 {
			existing += fmt.Sprintf("; at most %d runs per 24 hours", f.MaxRunsPerDay)
		}
		fmt.Fprintf(tw, "  backlog\texisting_files: %s\n", existing)
	}
	return tw.Flush()
}

// validateOnline asks Mosaic about every folder's agent (pipeline.Preflight) and the balance,
// and checks the PostgreSQL database of database.url.
func validateOnline(ctx context.Context, env *cliEnv, cfg *config.Config) error {
	if cfg.Database.Shared() {
		if err := validateDatabase(ctx, env, cfg); err != nil {
			return err
		}
	}
	client, err := mosaic.New(mosaic.Options{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, UserAgent: "mosaic-watch/" + version,
	})
	if err != nil {
		return err
	}
	var problems config.ErrorList
	for i := range cfg.Folders {
		f := &cfg.Folders[i]
		agent, err := pipeline.Preflight(ctx, client, f.PipelineFolder())
		var pe *pipeline.PreflightError
		switch {
		case errors.As(err, &pe):
			for _, p := range pe.Problems {
				problems = append(problems, cfg.Problem(f, p.Key, p.Msg))
			}
		case err != nil:
			return fmt.Errorf("ask Mosaic about the agent of folder %q: %w", f.Name, err)
		default:
			fmt.Fprintf(env.stdout, "Folder %q: agent %s (%s) checked with Mosaic.\n",
				f.Name, f.AgentID, agent.Name)
		}
	}
	if len(problems) > 0 {
		problems.Sort()
		return problems
	}
	if c, err := client.GetCredits(ctx); err == nil {
		rec := pipeline.CreditsRecord{Balance: c.Balance, Unlimited: c.Unlimited,
			AutoTopUp: c.AutoTopUp.Enabled}
		fmt.Fprintf(env.stdout, "Credits: %s\n", rec.String())
	}
	fmt.Fprintln(env.stdout)
	return nil
}

// validateDatabase connects to database.url read-only and checks its schema version.
func validateDatabase(ctx context.Context, env *cliEnv, cfg *config.Config) error {
	st, err := daemon.OpenStore(ctx, cfg, nil, true)
	if errors.Is(err, store.ErrNoSchema) {
		fmt.Fprintf(env.stdout, "Database %s: reachable, no mosaic-watch tables yet (the daemon creates them at its first start).\n",
			cfg.Database.Redacted())
		return nil
	}
	if err != nil {
		return fmt.Errorf("check database.url: %w", err)
	}
	defer st.Close()
	pg := st.(*store.Postgres)
	version, latest, err := pg.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("check database.url: %w", err)
	}
	fmt.Fprintf(env.stdout, "Database %s: reachable, mosaic-watch schema version %d (this binary: %d).\n",
		pg.Name(), version, latest)
	return nil
}

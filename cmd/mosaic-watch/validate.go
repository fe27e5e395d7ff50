package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/mosaic"
)

func cmdValidate(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "validate", "--config FILE | --schema", `
Check a configuration file without starting anything: unknown keys, wrong types, missing
folders or agent ids, outputs inside inputs and the like are reported with the file, line and
key. Prints the folders as the daemon will see them, with every default filled in.
Exit code 0 when valid, 2 when not. A running daemon validates the same way when the file
changes, and keeps its configuration when the file does not validate.

--schema prints the configuration's JSON Schema (draft 2020-12) instead, for editors: save it
and name it in the file's first line, "# yaml-language-server: $schema=PATH".`)
	configPath := configFlag(fs)
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
	out := env.stdout
	fmt.Fprintf(out, "%s is valid.\n\n", cfg.File)
	fmt.Fprintf(out, "Mosaic API:  %s (uploads via the %q endpoints), polling every %s\n",
		mosaic.RedactURL(cfg.BaseURL), cfg.UploadAPI, cfg.PollInterval)
	fmt.Fprintf(out, "State:       %s\n", cfg.StateDir)
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
		fmt.Fprintf(tw, "  source\tafter success: %s; after failure: %s\n", success, failure)
		existing := string(f.ExistingFiles)
		if f.MaxRunsPerDay > 0 {
			existing += fmt.Sprintf("; at most %d runs per 24 hours", f.MaxRunsPerDay)
		}
		fmt.Fprintf(tw, "  backlog\texisting_files: %s\n", existing)
	}
	return tw.Flush()
}

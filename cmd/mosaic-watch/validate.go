package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/mosaic"
)

func cmdValidate(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "validate", "--config FILE", `
Check a configuration file without starting anything: unknown keys, wrong types, missing
folders or agent ids, outputs inside inputs and the like are reported with the file, line and
key. Prints the folders as the daemon will see them, with every default filled in.
Exit code 0 when valid, 2 when not.`)
	configPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
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
	fmt.Fprintf(out, "Limits:      %d uploads, %d runs, %d downloads at once\n\n",
		cfg.Limits.Uploads, cfg.Limits.ActiveRuns, cfg.Limits.Downloads)
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
	}
	return tw.Flush()
}

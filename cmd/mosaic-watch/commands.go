package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
)

// version is set at release time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func cmdVersion(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "version", "", "Print the version, the commit it was built from and the Go version.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				commit = s.Value[:12]
			}
		}
	}
	fmt.Fprintf(env.stdout, "mosaic-watch %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func cmdValidate(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "validate", "--config FILE", `
Check a configuration file without starting anything: unknown keys, wrong types, missing
folders or agent ids, outputs inside inputs and the like are reported with the file, line and
key. Prints the folders as the daemon will see them, with every default filled in.
Exit code 0 when valid, 2 when not.`)
	cfgPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfigFlag(env, "validate", *cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%s is valid.\n\n", cfg.File)
	fmt.Fprintf(env.stdout, "Mosaic API:  %s (uploads via the %q endpoints), polling every %s\n", mosaic.RedactURL(cfg.BaseURL), cfg.UploadAPI, cfg.PollInterval)
	fmt.Fprintf(env.stdout, "State:       %s\n", cfg.StateDir)
	fmt.Fprintf(env.stdout, "Limits:      %d uploads, %d runs, %d downloads at once\n\n", cfg.Limits.Uploads, cfg.Limits.ActiveRuns, cfg.Limits.Downloads)
	tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
	for _, f := range cfg.Folders {
		fmt.Fprintf(tw, "Folder %q\n", f.Name)
		fmt.Fprintf(tw, "  input\t%s (recursive: %t, mode: %s, settle: %s)\n", f.Input, f.Recursive, f.Mode, f.Settle)
		fmt.Fprintf(tw, "  output\t%s\n", f.Output)
		fmt.Fprintf(tw, "  agent\t%s\n", f.AgentID)
		success := f.AfterSuccess
		if f.AfterSuccess == "move" {
			success += " to " + f.AfterSuccessMoveTo
		}
		failure := f.AfterFailure
		if f.AfterFailure == "move" {
			failure += " to " + f.AfterFailureMoveTo
		}
		fmt.Fprintf(tw, "  source\tafter success: %s; after failure: %s\n", success, failure)
	}
	return tw.Flush()
}

func cmdWhoami(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "whoami", "--config FILE", `
Ask Mosaic who the configured API key belongs to. Use it to check a new key or a
connection problem: it prints the organization (or user) on success and the reason on
failure. The key itself is never printed.`)
	cfgPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfigFlag(env, "whoami", *cfgPath)
	if err != nil {
		return err
	}
	client, err := mosaic.New(mosaic.Options{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, UserAgent: "mosaic-watch/" + version})
	if err != nil {
		return err
	}
	id, err := client.WhoAmI(ctx)
	if err != nil {
		if mosaic.IsAuth(err) {
			return fmt.Errorf("Mosaic rejected the API key (check mosaic.api_key in %s): %w", cfg.File, err)
		}
		return fmt.Errorf("ask Mosaic who this key belongs to: %w", err)
	}
	fmt.Fprintf(env.stdout, "The API key works: %s\n", id.String())
	if id.Scopes != nil {
		fmt.Fprintf(env.stdout, "Restricted key, scopes: %v\n", id.Scopes)
	}
	return nil
}

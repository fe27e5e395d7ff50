package main

import (
	"context"
	"fmt"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

func cmdWhoami(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "whoami", "--config FILE", `
Ask Mosaic who the configured API key belongs to. Use it to check a new key or a
connection problem: it prints the organization (or user) and the account's credit balance on
success, and the reason on failure. The key itself is never printed.`)
	configPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfigFlag(env, "whoami", *configPath)
	if err != nil {
		return err
	}
	client, err := mosaic.New(mosaic.Options{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, UserAgent: "mosaic-watch/" + version,
	})
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
	c, err := client.GetCredits(ctx)
	if err != nil {
		fmt.Fprintf(env.stdout, "Credits: could not be read (%v)\n", err)
		return nil
	}
	rec := pipeline.CreditsRecord{Balance: c.Balance, Unlimited: c.Unlimited,
		AutoTopUp: c.AutoTopUp.Enabled}
	fmt.Fprintf(env.stdout, "Credits: %s\n", rec.String())
	return nil
}

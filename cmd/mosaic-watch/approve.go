package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/backlog"
)

func cmdApprove(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "approve", "--config FILE FOLDER", `
Let a folder's videos that wait for approval start. With existing_files: confirm (the
default), the first time a folder is watched only limits.backlog_confirm_over of the videos
already in it start; the rest wait until this command (or the dashboard's Approve button).
FOLDER is the folder's name or input path. Videos dropped after the first watch never wait.
Works while the daemon runs: it picks the videos up within a second or two. Each run costs
credits: see 'mosaic-watch plan' first.`)
	configPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("approve: name exactly one FOLDER")
	}
	cfg, err := loadConfigFlag(env, "approve", *configPath)
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	var input string
	for _, f := range cfg.Folders {
		if f.Name == name || f.Input == name {
			input, name = f.Input, f.Name
		}
	}
	if input == "" {
		return usagef("approve: no folder named %q in %s", name, cfg.File)
	}
	st, err := openStoreForCLI(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := backlog.Load(ctx, st, input)
	if err != nil {
		return err
	}
	n, err := backlog.Approve(ctx, st, input, time.Now())
	if err != nil {
		return err
	}
	switch {
	case m == nil:
		fmt.Fprintf(env.stdout, "Folder %s has not been watched yet: approved in advance, every "+
			"video already in it starts at its first watch.\n", name)
	case m.Held == 0:
		fmt.Fprintf(env.stdout, "Nothing in folder %s waits for approval.\n", name)
	default:
		fmt.Fprintf(env.stdout, "Approved folder %s: %d waiting video(s) start now; held videos the "+
			"daemon has not reported yet start as it does.\n", name, n)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

const storeAbout = `
Work on a job store as a whole.

  mosaic-watch store copy --from sqlite:PATH --to postgres://USER@HOST/DATABASE

copy moves a single host's state (its SQLite file, state_dir/mosaic-watch.db) into the
PostgreSQL database that several hosts will share (database.url), keeping every job, its
history and its number, so that nothing already processed is run (billed) again and what was
in progress resumes. It refuses a target that already has jobs, and a source a running daemon
uses: stop the daemon first. The source is only read; a failed copy leaves the target as it
was. Then set database.url in each host's configuration and start the daemons.

The password comes from the URL, PGPASSWORD, ~/.pgpass or --password-file, as for psql; it is
never printed.`

func cmdStore(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "store", "copy --from sqlite:PATH --to postgres://... [--password-file FILE]", storeAbout)
	from := fs.String("from", "", "the source: `sqlite:PATH` of a state database")
	to := fs.String("to", "", "the target: a `postgres://` URL (an empty database, or one without jobs)")
	passwordFile := fs.String("password-file", "", "a `file` holding the target's password")
	var action string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		action, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if action == "" && fs.NArg() > 0 {
		action = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	switch {
	case action != "copy":
		return usagef("store: give the action: store copy --from sqlite:PATH --to postgres://...")
	case fs.NArg() > 0:
		return usagef("store copy: unexpected argument %q", fs.Arg(0))
	case !strings.HasPrefix(*from, "sqlite:"):
		return usagef("store copy: --from must be sqlite:PATH (the state database, state_dir/mosaic-watch.db)")
	case *to == "":
		return usagef("store copy: --to postgres://USER@HOST/DATABASE is required")
	}
	if _, err := store.ParsePostgresURL(*to); err != nil {
		return usagef("store copy: --to: %v", err)
	}
	opts := store.Options{}
	if *passwordFile != "" {
		b, err := os.ReadFile(*passwordFile)
		if err != nil {
			return fmt.Errorf("read --password-file: %w", err)
		}
		opts.Password = strings.TrimSpace(string(b))
	}
	return storeCopy(ctx, env, strings.TrimPrefix(*from, "sqlite:"), *to, opts)
}

func storeCopy(ctx context.Context, env *cliEnv, path, to string, opts store.Options) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("store copy: no state database at %s", path)
	}
	// A running daemon holds its state folder's lock: copying a store in use would miss what
	// it does next.
	host, _ := os.Hostname()
	lock, err := pipeline.LockFolder(filepath.Dir(path), pipeline.LockHolder{Host: host, PID: os.Getpid(), Config: "store copy"})
	var le *pipeline.LockedError
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("store copy: a mosaic-watch daemon uses %s (%s); stop it first", path, le.Holder)
	case err == nil:
		defer lock.Close()
	}
	src, err := store.Open(ctx, path, store.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store copy: open the source: %w", err)
	}
	defer src.Close()
	dst, err := store.OpenPostgres(ctx, to, opts)
	if err != nil {
		return fmt.Errorf("store copy: open the target: %w", err)
	}
	defer dst.Close()
	stats, err := store.Copy(ctx, dst, src)
	if errors.Is(err, store.ErrTargetNotEmpty) {
		return fmt.Errorf("store copy: %s already has jobs; copy only into a database no daemon has used yet", dst.Name())
	}
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	fmt.Fprintf(env.stdout, "Copied %d jobs (%d history lines, %d settings) from %s into %s.\n"+
		"Next: set database.url in each host's configuration and start the daemons.\n",
		stats.Jobs, stats.Events, stats.Meta, path, dst.Name())
	return nil
}

// Command mosaic-watch turns folders into a front door for Mosaic's video-editing agents: every
// finished video dropped into an input folder is uploaded, the folder's agent runs on it, and the
// outputs land in a mirror folder with the same layout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // usage or configuration error
)

// usageError is a mistake on the command line; it exits 2 and prints a hint.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what a command may touch: streams and the environment, so tests can run commands
// in-process.
type cliEnv struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

func commands() []command {
	return []command{
		{"run", "watch the configured folders and process files (the daemon)", cmdRun},
		{"validate", "check a configuration file and print what it means", cmdValidate},
		{"status", "show jobs by state, or the history of one file", cmdStatus},
		{"explain", "say what happens to one file and why", cmdExplain},
		{"plan", "dry run: what a start would process now, without starting anything", cmdPlan},
		{"approve", "let the videos waiting for approval in a folder start", cmdApprove},
		{"retry", "try failed jobs again (one job, one path, or every failed job)", cmdRetry},
		{"cancel", "cancel the Mosaic run of a job or path", cmdCancel},
		{"whoami", "check the API key against Mosaic", cmdWhoami},
		{"health", "ask the running daemon whether it is healthy (exit 0 ok, 1 not)", cmdHealth},
		{"demo", "see the product work in one command, against a bundled fake Mosaic", cmdDemo},
		{"service", "install and control mosaic-watch as a system service", cmdService},
		{"store", "copy a single host's jobs into a shared PostgreSQL database", cmdStore},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv}
	os.Exit(run(context.Background(), env, os.Args[1:]))
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			printUsage(env.stdout)
			if len(args) == 0 {
				return exitUsage
			}
			return exitOK
		}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		return exitCode(env, err)
	}
	fmt.Fprintf(env.stderr, "mosaic-watch: unknown command %q\n\n", args[0])
	printUsage(env.stderr)
	return exitUsage
}

func exitCode(env *cliEnv, err error) int {
	var ue *usageError
	var problems config.ErrorList
	var ce *configError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.stderr, "mosaic-watch: %s\nRun 'mosaic-watch help' for usage.\n", ue.msg)
		return exitUsage
	case errors.As(err, &problems):
		fmt.Fprintf(env.stderr, "mosaic-watch: the configuration is not valid:\n%s\n", problems.Error())
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(env.stderr, "mosaic-watch: %s\n", ce.msg)
		return exitUsage
	}
	fmt.Fprintf(env.stderr, "mosaic-watch: %v\n", err)
	return exitFailure
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "mosaic-watch watches folders and runs Mosaic agents on every video dropped "+
		`into them.

Usage:
  mosaic-watch <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
First steps:
  mosaic-watch demo                              # watch it work against a bundled fake Mosaic
  mosaic-watch validate --config config.yaml     # check your configuration
  mosaic-watch plan --config config.yaml         # see what a start would process (no cost)
  mosaic-watch run --config config.yaml          # start watching

Run 'mosaic-watch <command> --help' for a command's flags.
Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
`)
}

// newFlags makes a flag set whose --help prints the command's description and flags.
func newFlags(env *cliEnv, name, usage, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stdout, "Usage: mosaic-watch %s %s\n\n%s\n", name, usage,
			strings.TrimSpace(about))
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(env.stdout, "\nFlags:")
			fs.SetOutput(env.stdout)
			fs.PrintDefaults()
			fs.SetOutput(env.stderr)
		}
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors (exit 2) and --help into exit 0.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp // fs.Parse has printed the usage
	}
	if err != nil {
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "path of the YAML configuration `file` (required)")
}

// loadConfigFlag loads the --config file, or explains that it is required.
func loadConfigFlag(env *cliEnv, cmd, path string) (*config.Config, error) {
	if path == "" {
		return nil, usagef("%s: --config FILE is required (see config.example.yaml)", cmd)
	}
	cfg, err := config.Load(path, env.lookupEnv)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.stderr, "warning: %s\n", w)
	}
	return cfg, nil
}

// newLogger logs to w at level, as text or JSON.
func newLogger(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at release time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func cmdVersion(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "version", "",
		"Print the version, the commit it was built from and the Go version.")
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
	fmt.Fprintf(env.stdout, "mosaic-watch %s (commit %s, %s, %s/%s)\n", version, commit,
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

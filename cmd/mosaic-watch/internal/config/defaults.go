package config

import (
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

// Defaults the configuration owns. The others come from the package whose behaviour they set
// (mosaic.DefaultBaseURL, pipeline.Default*, watcher.Default*), so each is written once.
const (
	DefaultShutdownTimeout          = 10 * time.Second
	MaxShutdownTimeout              = 60 * time.Second
	DefaultMaxFileSize        int64 = 5 << 30 // the upload limit Mosaic documents
	DefaultBacklogConfirmOver       = 50      // existing videos that start without approve

	minInterval = 100 * time.Millisecond // lowest settle/poll interval (tests use sub-second values)
)

// defaults returns the built-in defaults (no folders, no API key).
func defaults() *Config {
	return &Config{
		BaseURL:        mosaic.DefaultBaseURL,
		PollInterval:   pipeline.DefaultPollInterval,
		ReconcileAfter: pipeline.DefaultReconcileAfter,
		MaxRetryAfter:  pipeline.DefaultMaxRetryAfter,
		UploadAPI:      mosaic.UploadsAPI,
		StateDir:       DefaultStateDir(),
		Database:       Database{Lease: DefaultLease},
		LogLevel:       slog.LevelInfo,
		LogFormat:      "text",
		Limits: Limits{
			Uploads:    pipeline.DefaultUploads,
			ActiveRuns: pipeline.DefaultActiveRuns,
			Downloads:  pipeline.DefaultDownloads,

			BacklogConfirmOver: DefaultBacklogConfirmOver,
		},
		ShutdownTimeout: DefaultShutdownTimeout,
		ScanInterval:    watcher.DefaultScanInterval,
		Retry: Retry{
			Base:     pipeline.DefaultRetryBase,
			Max:      pipeline.DefaultRetryMax,
			Attempts: pipeline.DefaultRetryAttempts,
		},
	}
}

// defaultFolder returns the built-in per-folder defaults.
func defaultFolder() Folder {
	return Folder{
		Recursive:       true,
		Settle:          watcher.DefaultSettle,
		IncompleteAfter: watcher.DefaultIncompleteAfter,
		Mode:            watcher.ModeAuto,
		PollInterval:    watcher.DefaultPollInterval,
		AfterSuccess:    Keep,
		AfterFailure:    Keep,
		MaxFileSize:     DefaultMaxFileSize,
		OnSourceChange:  pipeline.SourceChangeFinish,
		ExistingFiles:   ExistingConfirm,
	}
}

// EnvStateDir names the environment variable that sets state_dir when the file sets none. The
// container image sets it to /state, its volume, so the database never lands in the
// container's throw-away layer.
const EnvStateDir = "MOSAIC_WATCH_STATE_DIR"

// stateDirFromEnv applies EnvStateDir: the state_dir unless the file sets one (an explicit
// setting wins, with a warning when they differ).
func (l *loader) stateDirFromEnv() {
	v, ok := l.lookupEnv(EnvStateDir)
	if !ok || v == "" {
		return
	}
	if !filepath.IsAbs(v) {
		l.problem(EnvStateDir, 0, "environment variable %s=%q must be an absolute path",
			EnvStateDir, v)
		return
	}
	v = filepath.Clean(v)
	if l.stateDirLine == 0 {
		l.cfg.StateDir = v
		return
	}
	if v != l.cfg.StateDir {
		l.warn("state_dir", l.stateDirLine, "set to %s, so %s=%s is ignored (in the container "+
			"image, state outside the %s volume is lost when the container is re-created)",
			l.cfg.StateDir, EnvStateDir, v, v)
	}
}

// DefaultStateDir is where the SQLite database and staging live when state_dir is not set.
func DefaultStateDir() string {
	home, _ := os.UserHomeDir()
	return stateDirFor(runtime.GOOS, os.Geteuid() == 0, os.Getenv, home)
}

// stateDirFor is DefaultStateDir on goos. macOS and Linux paths are built with package path,
// so they come out the same whichever system runs the tests.
func stateDirFor(goos string, root bool, getenv func(string) string, home string) string {
	const name = "mosaic-watch"
	switch goos {
	case "windows":
		if pd := getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, name)
		}
		return `C:\ProgramData\` + name
	case "darwin":
		if root || home == "" {
			return "/Library/Application Support/" + name
		}
		return path.Join(home, "Library", "Application Support", name)
	default:
		if root {
			return "/var/lib/" + name
		}
		if xdg := getenv("XDG_STATE_HOME"); path.IsAbs(xdg) {
			return path.Join(xdg, name)
		}
		if home == "" {
			return "/var/lib/" + name
		}
		return path.Join(home, ".local", "state", name)
	}
}

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
	DefaultShutdownTimeout       = 10 * time.Second
	MaxShutdownTimeout           = 60 * time.Second
	DefaultMaxFileSize     int64 = 5 << 30 // the upload limit Mosaic documents

	minInterval = 100 * time.Millisecond // lowest settle/poll interval (tests use sub-second values)
)

// defaults returns the built-in defaults (no folders, no API key).
func defaults() *Config {
	return &Config{
		BaseURL:        mosaic.DefaultBaseURL,
		PollInterval:   pipeline.DefaultPollInterval,
		ReconcileAfter: pipeline.DefaultReconcileAfter,
		UploadAPI:      mosaic.UploadsAPI,
		StateDir:       DefaultStateDir(),
		LogLevel:       slog.LevelInfo,
		LogFormat:      "text",
		Limits: Limits{
			Uploads:    pipeline.DefaultUploads,
			ActiveRuns: pipeline.DefaultActiveRuns,
			Downloads:  pipeline.DefaultDownloads,
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

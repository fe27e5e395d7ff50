// Package config loads mosaic-watch's YAML configuration. The file is parsed into a yaml.Node
// tree and walked against the schema by hand, so that every problem (unknown key, wrong type,
// duplicate key, bad value) is reported with its key path and line, all at once. Defaults are
// applied first, then the file, then the resolved configuration is validated as a whole (paths,
// nesting, required keys).
package config

import (
	"log/slog"
	"net"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

// Config is the resolved, validated configuration: every default applied, every path absolute
// and cleaned.
type Config struct {
	File    string // absolute path of the config file
	BaseURL string // mosaic.base_url
	// APIKey is mosaic.api_key (after ${VAR} expansion) or the trimmed contents of
	// mosaic.api_key_file.
	APIKey       string
	PollInterval time.Duration // mosaic.poll_interval: how often running runs are checked
	// ReconcileAfter is mosaic.reconcile_after: after a lost run start, "no run listed" is
	// trusted only this long after the attempt.
	ReconcileAfter time.Duration
	// MaxRetryAfter is mosaic.max_retry_after: the longest pause a Retry-After answer imposes.
	MaxRetryAfter   time.Duration
	UploadAPI       mosaic.UploadAPI // mosaic.upload_api
	StateDir        string           // state_dir; created by the daemon, not by Load
	Database        Database         // database: the job store (SQLite in state_dir when unset)
	LogLevel        slog.Level       // log.level: debug, info, warn or error
	LogFormat       string           // log.format: text or json
	Limits          Limits
	ShutdownTimeout time.Duration // shutdown_timeout, at most MaxShutdownTimeout
	ScanInterval    time.Duration // scan_interval: full rescan of every input folder
	Retry           Retry         // retry: backoff for transient errors of a job
	Folders         []Folder
	// Warnings are non-fatal problems, formatted like errors ("FILE:LINE: key.path: message").
	Warnings []string

	// The local HTTP surface (off while HTTPListen is empty) and Mosaic's run callbacks.
	HTTPListen       string   // http.listen, host:port
	HTTPToken        string   // http.token (secret)
	HTTPAllowedHosts []string // http.allowed_hosts: Host names served besides loopback ones
	WebhookSecret    string   // webhook.secret (secret)
	WebhookPublicURL string   // webhook.public_url, passed to runs as their callback_url

	lookupEnv func(string) (string, bool) // how ${VAR} was expanded, for Reload
}

// Reload loads the same file again, expanding ${VAR} the same way: a running daemon's reload.
func (c *Config) Reload() (*Config, error) { return Load(c.File, c.lookupEnv) }

// Limits is the top-level `limits:` section.
type Limits struct {
	Uploads    int // concurrent uploads
	ActiveRuns int // runs in flight on Mosaic at once
	Downloads  int // concurrent downloads
	// MaxRunsPerDay bounds run starts of all folders in any 24 hours; 0 = no limit.
	MaxRunsPerDay int
	// BacklogConfirmOver is how many videos already in a folder the first time it is watched
	// start at once under existing_files: confirm; the rest wait for `approve`.
	BacklogConfirmOver int
}

// Retry is the `retry:` section.
type Retry struct {
	Base     time.Duration // retry.base: first delay
	Max      time.Duration // retry.max: delay cap
	Attempts int           // retry.attempts: then the job fails
}

// Folder is one entry of `folders:`, with `defaults:` and the built-in defaults merged in.
type Folder struct {
	Index         int
	Name          string // folders[i].name, default: base name of input
	Input, Output string
	AgentID       string
	UpdateParams  map[string]map[string]any // folders[i].update_params (node id -> params)
	IgnoreNodes   []string
	Recursive     bool
	// Include and Exclude are globs on the relative path: a nil Include means the watcher's
	// video patterns; Exclude adds to the watcher's built-in list.
	Include, Exclude   []string
	Settle             time.Duration
	IncompleteAfter    time.Duration // incomplete_after: report a file that never completes
	Mode               watcher.Mode
	PollInterval       time.Duration // used by poll mode
	AfterSuccess       Disposition   // Keep, Move or Delete
	AfterSuccessMoveTo string        // set iff AfterSuccess is Move
	AfterFailure       Disposition   // Keep or Move
	AfterFailureMoveTo string        // set iff AfterFailure is Move
	MaxFileSize        int64         // limits.max_file_size in bytes
	MaxRunsPerDay      int           // limits.max_runs_per_day of the folder; 0 = no limit
	// ExistingFiles is what happens to the videos already in the folder the first time it is
	// watched (existing_files).
	ExistingFiles ExistingFiles
	// OnSourceChange is on_source_change: what happens to an active run whose source file is
	// replaced or deleted (pipeline.SourceChangeFinish or pipeline.SourceChangeCancel).
	OnSourceChange string

	at  map[string]location // where each key was set, for problems found after loading
	src location            // the folder entry itself
}

// Problem is a problem with folder f's key found after loading (e.g. by asking Mosaic about
// the agent), placed at the line that set the key, else at the folder entry.
func (c *Config) Problem(f *Folder, key, msg string) *Error {
	loc, ok := f.at[key]
	if !ok {
		loc = location{path: f.src.path + "." + key, line: f.src.line}
	}
	return &Error{File: c.File, Line: loc.line, Path: loc.path, Msg: msg}
}

// ExistingFiles is the existing_files policy.
type ExistingFiles string

// existing_files values.
const (
	ExistingConfirm ExistingFiles = "confirm" // up to limits.backlog_confirm_over start, the rest wait
	ExistingProcess ExistingFiles = "process" // every one starts
	ExistingIgnore  ExistingFiles = "ignore"  // none starts; they are recorded as skipped
)

// Disposition is what happens to a source video once its job ends (after_success,
// after_failure).
type Disposition string

// Dispositions.
const (
	Keep   Disposition = "keep"
	Move   Disposition = "move"
	Delete Disposition = "delete"
)

func (d Disposition) String() string { return string(d) }

// WatchRoot is the folder as the watcher watches it.
func (f *Folder) WatchRoot() watcher.Root {
	return watcher.Root{
		Path: f.Input, Recursive: f.Recursive, Include: f.Include, Exclude: f.Exclude,
		Settle: f.Settle, Mode: f.Mode, PollInterval: f.PollInterval, IncompleteAfter: f.IncompleteAfter,
	}
}

// PipelineFolder is the folder as the pipeline processes it.
func (f *Folder) PipelineFolder() pipeline.Folder {
	return pipeline.Folder{
		Name: f.Name, Input: f.Input, Output: f.Output, AgentID: f.AgentID,
		UpdateParams: f.UpdateParams, IgnoreNodes: f.IgnoreNodes,
		AfterSuccess: string(f.AfterSuccess), AfterSuccessMoveTo: f.AfterSuccessMoveTo,
		AfterFailure: string(f.AfterFailure), AfterFailureMoveTo: f.AfterFailureMoveTo,
		MaxFileSize: f.MaxFileSize, OnSourceChange: f.OnSourceChange, MaxRunsPerDay: f.MaxRunsPerDay,
	}
}

// HTTPExposed reports whether http.listen accepts connections from other machines (it is set
// and not a loopback address).
func (c *Config) HTTPExposed() bool {
	host, _, err := net.SplitHostPort(c.HTTPListen)
	return err == nil && !loopbackHost(host)
}

// FolderNames maps each folder's input to its name, the way jobs name their folder.
func (c *Config) FolderNames() map[string]string {
	names := make(map[string]string, len(c.Folders))
	for _, f := range c.Folders {
		if _, ok := names[f.Input]; !ok {
			names[f.Input] = f.Name
		}
	}
	return names
}

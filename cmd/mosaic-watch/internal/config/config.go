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
	ReconcileAfter  time.Duration
	UploadAPI       mosaic.UploadAPI // mosaic.upload_api
	StateDir        string           // state_dir; created by the daemon, not by Load
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
}

// Limits is the top-level `limits:` section.
type Limits struct {
	Uploads    int // concurrent uploads
	ActiveRuns int // runs in flight on Mosaic at once
	Downloads  int // concurrent downloads
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
}

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
		MaxFileSize: f.MaxFileSize,
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

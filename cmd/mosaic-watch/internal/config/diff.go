package config

// What a reload changes: the differences between two configurations in words, and which of
// them a running daemon can apply.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Reload is a new configuration as a running daemon can take it.
type Reload struct {
	// Config is the new configuration with every key that cannot change while running set
	// back to its running value.
	Config *Config
	// Changes lists what changes, for one log line: "+folder social", "-folder old",
	// "folder captions: agent_id changed, settle 10s→30s", "limits.max_runs_per_day 0→20".
	Changes []string
	// NeedRestart lists the changed keys that keep their running value until a restart.
	NeedRestart []string
}

// PlanReload compares the running configuration with a newly loaded one.
func PlanReload(running, next *Config) Reload {
	applied := *next
	r := Reload{Config: &applied}
	r.Changes = folderChanges(running.Folders, next.Folders)

	// Applied live.
	live := []struct {
		key       string
		old, next any
	}{
		{"limits.max_runs_per_day", running.Limits.MaxRunsPerDay, next.Limits.MaxRunsPerDay},
		{"limits.backlog_confirm_over", running.Limits.BacklogConfirmOver,
			next.Limits.BacklogConfirmOver},
		{"log.level", strings.ToLower(running.LogLevel.String()),
			strings.ToLower(next.LogLevel.String())},
	}
	for _, c := range live {
		if c.old != c.next {
			r.Changes = append(r.Changes, fmt.Sprintf("%s %v→%v", c.key, show(c.old), show(c.next)))
		}
	}
	if running.APIKey != next.APIKey {
		r.Changes = append(r.Changes, "mosaic.api_key changed") // never its value
	}

	// Kept until a restart: the running value stays in the applied configuration.
	restart := func(key string, changed bool, keep func()) {
		if changed {
			r.NeedRestart = append(r.NeedRestart, key)
			keep()
		}
	}
	a := &applied
	restart("state_dir", running.StateDir != next.StateDir, func() { a.StateDir = running.StateDir })
	restart("database", running.Database != next.Database, func() { a.Database = running.Database })
	restart("mosaic.base_url", running.BaseURL != next.BaseURL, func() { a.BaseURL = running.BaseURL })
	restart("mosaic.upload_api", running.UploadAPI != next.UploadAPI,
		func() { a.UploadAPI = running.UploadAPI })
	restart("mosaic.poll_interval", running.PollInterval != next.PollInterval,
		func() { a.PollInterval = running.PollInterval })
	restart("mosaic.reconcile_after", running.ReconcileAfter != next.ReconcileAfter,
		func() { a.ReconcileAfter = running.ReconcileAfter })
	restart("log.format", running.LogFormat != next.LogFormat,
		func() { a.LogFormat = running.LogFormat })
	restart("limits.uploads", running.Limits.Uploads != next.Limits.Uploads,
		func() { a.Limits.Uploads = running.Limits.Uploads })
	restart("limits.active_runs", running.Limits.ActiveRuns != next.Limits.ActiveRuns,
		func() { a.Limits.ActiveRuns = running.Limits.ActiveRuns })
	restart("limits.downloads", running.Limits.Downloads != next.Limits.Downloads,
		func() { a.Limits.Downloads = running.Limits.Downloads })
	restart("shutdown_timeout", running.ShutdownTimeout != next.ShutdownTimeout,
		func() { a.ShutdownTimeout = running.ShutdownTimeout })
	restart("scan_interval", running.ScanInterval != next.ScanInterval,
		func() { a.ScanInterval = running.ScanInterval })
	restart("retry", running.Retry != next.Retry, func() { a.Retry = running.Retry })
	restart("http.listen", running.HTTPListen != next.HTTPListen,
		func() { a.HTTPListen = running.HTTPListen })
	restart("http.token", running.HTTPToken != next.HTTPToken,
		func() { a.HTTPToken = running.HTTPToken })
	restart("webhook.secret", running.WebhookSecret != next.WebhookSecret,
		func() { a.WebhookSecret = running.WebhookSecret })
	restart("webhook.public_url", running.WebhookPublicURL != next.WebhookPublicURL,
		func() { a.WebhookPublicURL = running.WebhookPublicURL })
	restart("http.allowed_hosts", !slices.Equal(running.HTTPAllowedHosts, next.HTTPAllowedHosts),
		func() { a.HTTPAllowedHosts = running.HTTPAllowedHosts })
	return r
}

// folderChanges compares folders by input, the key jobs use.
func folderChanges(running, next []Folder) []string {
	var added, removed, changed []string
	old := map[string]Folder{}
	for _, f := range running {
		old[f.Input] = f
	}
	kept := map[string]bool{}
	for _, f := range next {
		o, ok := old[f.Input]
		if !ok {
			added = append(added, "+folder "+f.Name)
			continue
		}
		kept[f.Input] = true
		if d := folderDiff(o, f); len(d) > 0 {
			changed = append(changed, fmt.Sprintf("folder %s: %s", f.Name, strings.Join(d, ", ")))
		}
	}
	for _, f := range running {
		if !kept[f.Input] {
			removed = append(removed, "-folder "+f.Name)
		}
	}
	return slices.Concat(added, removed, changed)
}

func folderDiff(a, b Folder) []string {
	var d []string
	value := func(key string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			d = append(d, fmt.Sprintf("%s %v→%v", key, show(x), show(y)))
		}
	}
	changed := func(key string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			d = append(d, key+" changed")
		}
	}
	value("name", a.Name, b.Name)
	changed("output", a.Output, b.Output)
	changed("agent_id", a.AgentID, b.AgentID)
	if len(a.UpdateParams)+len(b.UpdateParams) > 0 {
		changed("update_params", a.UpdateParams, b.UpdateParams)
	}
	list := func(key string, x, y []string, nilMatters bool) {
		if !slices.Equal(x, y) || (nilMatters && (x == nil) != (y == nil)) {
			d = append(d, key+" changed")
		}
	}
	list("ignore_nodes", a.IgnoreNodes, b.IgnoreNodes, false)
	value("recursive", a.Recursive, b.Recursive)
	list("include", a.Include, b.Include, true) // nil is the default video list
	list("exclude", a.Exclude, b.Exclude, false)
	value("settle", a.Settle, b.Settle)
	value("incomplete_after", a.IncompleteAfter, b.IncompleteAfter)
	value("mode", a.Mode, b.Mode)
	value("poll_interval", a.PollInterval, b.PollInterval)
	value("after_success", a.AfterSuccess, b.AfterSuccess)
	changed("after_success_move_to", a.AfterSuccessMoveTo, b.AfterSuccessMoveTo)
	value("after_failure", a.AfterFailure, b.AfterFailure)
	changed("after_failure_move_to", a.AfterFailureMoveTo, b.AfterFailureMoveTo)
	value("existing_files", a.ExistingFiles, b.ExistingFiles)
	value("limits.max_file_size", a.MaxFileSize, b.MaxFileSize)
	value("limits.max_runs_per_day", a.MaxRunsPerDay, b.MaxRunsPerDay)
	return d
}

// show writes a value the way the file does (10s, not 10000000000).
func show(v any) string {
	switch x := v.(type) {
	case time.Duration:
		return shortDuration(x)
	case string:
		if x == "" {
			return `""`
		}
	}
	return fmt.Sprint(v)
}

// shortDuration drops Go's zero parts: 10s, 2m, 1h30m (not 2m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

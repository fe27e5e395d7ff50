package daemon

// Live configuration reload: SIGHUP (through Reload), `service reload`, or the file changing on
// disk. The whole file is loaded and validated exactly as `validate` does; a bad edit changes
// nothing and is reported (log, /healthz, dashboard, status) until a good edit or a restart.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

// ReloadErrorKey is the store meta key holding the last failed reload, so that `status` and
// `explain` (other processes) can show it. Empty when the configuration in effect is the file's.
const ReloadErrorKey = "config_reload_error"

// ReloadError is what ReloadErrorKey holds.
type ReloadError struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"` // every problem, one "FILE:LINE: key.path: message" per line
}

// ConfigDebounce is how long the configuration file must stay quiet after a change before it
// is reloaded: editors write, rename and chmod in quick bursts.
const ConfigDebounce = time.Second

type reloadState struct {
	mu       sync.Mutex // one reload at a time
	levelVar *slog.LevelVar

	errMu sync.Mutex
	err   string // the last failed reload ("" = none)
	sum   [32]byte
}

// noteLoaded records the content of the configuration file in effect (New, a reload): the
// file watch reloads only when the content differs.
func (d *Daemon) noteLoaded() {
	data, err := os.ReadFile(d.config().File)
	if err != nil {
		return
	}
	d.reload.errMu.Lock()
	d.reload.sum = sha256.Sum256(data)
	d.reload.errMu.Unlock()
}

// SetLogLevelVar lets reloads change log.level: the logger given to New must use lv.
func (d *Daemon) SetLogLevelVar(lv *slog.LevelVar) { d.reload.levelVar = lv }

// Reload loads and validates the configuration file again and applies it. On failure the
// running configuration stays and the error is reported until a good reload or a restart.
func (d *Daemon) Reload(ctx context.Context, why string) error {
	d.reload.mu.Lock()
	defer d.reload.mu.Unlock()
	running := d.config()
	data, _ := os.ReadFile(running.File)
	next, err := running.Reload()
	if err != nil {
		d.log.Error("config reload failed; the running configuration stays in effect", "trigger", why,
			"err", err.Error())
		d.setReloadError(ctx, err.Error(), data)
		return err
	}
	for _, w := range next.Warnings {
		d.log.Warn("config: " + w)
	}
	plan := config.PlanReload(running, next)
	if err := d.apply(ctx, running, plan.Config); err != nil {
		d.log.Error("config reload could not be applied; the running configuration stays in effect",
			"trigger", why, "err", err)
		d.setReloadError(ctx, err.Error(), data)
		return err
	}
	d.cfgMu.Lock()
	d.cfg = plan.Config
	d.cfgMu.Unlock()
	changes := "no changes"
	if len(plan.Changes) > 0 {
		changes = strings.Join(plan.Changes, ", ")
	}
	d.log.Info("config reloaded: "+changes, "trigger", why)
	if len(plan.NeedRestart) > 0 {
		d.log.Warn("config change needs a restart to apply; the running value stays in effect until then",
			"keys", strings.Join(plan.NeedRestart, ", "))
	}
	d.clearReloadError(ctx)
	d.reload.errMu.Lock()
	d.reload.sum = sha256.Sum256(data)
	d.reload.errMu.Unlock()
	return nil
}

// apply makes the running parts use next. Folders are added to the pipeline before the
// watcher reports their files, and their first watch is recorded before that.
func (d *Daemon) apply(ctx context.Context, running, next *config.Config) error {
	if next.APIKey != running.APIKey {
		if err := d.client.SetAPIKey(next.APIKey); err != nil {
			return err
		}
	}
	// The new folders' input locks are taken first: a folder another instance serves is not
	// served here (it is shown degraded and tried again at the next reload).
	wasServed := d.servedFolders()
	served, err := d.lockInputs(next.Folders)
	if err != nil {
		d.releaseInputs(wasServed)
		return err
	}
	undo := func() {
		d.cfgMu.Lock()
		d.cfg = running
		d.cfgMu.Unlock()
		_ = d.pipe.SetFolders(ctx, pipelineFolders(wasServed))
		d.pipe.SetMaxRunsPerDay(running.Limits.MaxRunsPerDay)
		d.releaseInputs(wasServed)
	}
	roots := make([]watcher.Root, len(served))
	for i := range served {
		roots[i] = served[i].WatchRoot()
	}
	if err := d.pipe.SetFolders(ctx, pipelineFolders(served)); err != nil {
		d.releaseInputs(wasServed)
		return err
	}
	d.pipe.SetMaxRunsPerDay(next.Limits.MaxRunsPerDay)
	d.cfgMu.Lock()
	d.cfg = next // the watcher's first events for a new folder look the folder up here
	d.cfgMu.Unlock()
	if err := d.watcher.SetRoots(roots); err != nil {
		undo()
		return fmt.Errorf("watch the new folders: %w", err)
	}
	_, removed := folderDelta(running.Folders, next.Folders)
	d.backlog.forget(removed)
	d.metrics.setFolders(folderNames(next))
	d.locksMu.Lock()
	d.served = served
	d.locksMu.Unlock()
	// Folders removed from the configuration are free for others once their runs are done:
	// until then this process still writes their outputs and handles their sources.
	d.releaseInputs(append(slices.Clone(served), d.busyFolders(ctx, removed)...))
	// A configured folder another instance serves stays shown as refused: clearing it here
	// made the folder look healthy while none of its files were processed.
	d.forgetRefused(next.Folders)
	if lv := d.reload.levelVar; lv != nil {
		lv.Set(next.LogLevel)
	}
	d.healthMu.Lock()
	for _, f := range removed {
		delete(d.health, f.Input)
	}
	d.healthMu.Unlock()
	return nil
}

// pipelineFolders is folders as the pipeline takes them.
func pipelineFolders(folders []config.Folder) []pipeline.Folder {
	out := make([]pipeline.Folder, len(folders))
	for i := range folders {
		out[i] = folders[i].PipelineFolder()
	}
	return out
}

// folderDelta returns the folders of next not in running, and of running not in next, by input.
func folderDelta(running, next []config.Folder) (added, removed []config.Folder) {
	for _, f := range next {
		if !hasInput(running, f.Input) {
			added = append(added, f)
		}
	}
	for _, f := range running {
		if !hasInput(next, f.Input) {
			removed = append(removed, f)
		}
	}
	return added, removed
}

// hasInput reports whether list has a folder with this input.
func hasInput(list []config.Folder, input string) bool {
	for _, f := range list {
		if f.Input == input {
			return true
		}
	}
	return false
}

func (d *Daemon) setReloadError(ctx context.Context, msg string, data []byte) {
	// Recorded for status before /healthz and the dashboard show it, so both agree.
	raw, _ := json.Marshal(ReloadError{At: time.Now().UTC(), Error: msg})
	if err := d.store.SetMeta(ctx, HostMetaKey(d.config(), ReloadErrorKey), string(raw)); err != nil {
		d.log.Warn("record the failed reload for status", "err", err)
	}
	d.reload.errMu.Lock()
	d.reload.err = msg
	d.reload.sum = sha256.Sum256(data) // the watcher does not retry this content
	d.reload.errMu.Unlock()
}

func (d *Daemon) clearReloadError(ctx context.Context) {
	d.reload.errMu.Lock()
	d.reload.err = ""
	d.reload.errMu.Unlock()
	if v, err := d.store.GetMeta(ctx, HostMetaKey(d.config(), ReloadErrorKey)); err == nil && v == "" {
		return
	}
	if err := d.store.SetMeta(ctx, HostMetaKey(d.config(), ReloadErrorKey), ""); err != nil {
		d.log.Warn("clear the failed reload for status", "err", err)
	}
}

// ReloadFailure returns why the last reload failed ("" = the file's configuration is in effect).
func (d *Daemon) ReloadFailure() string {
	d.reload.errMu.Lock()
	defer d.reload.errMu.Unlock()
	return d.reload.err
}

// watchConfigFile reloads when the configuration file changes. It watches the file's folder,
// not the file: editors save by writing a new file and renaming it over the old one, which
// ends a watch on the file itself. Changes are debounced, and content that did not change
// (a touch, a save without edits) is not reloaded.
func (d *Daemon) watchConfigFile(ctx context.Context) {
	file := d.config().File
	fsw, err := fsnotify.NewWatcher()
	if err == nil {
		err = fsw.Add(filepath.Dir(file))
	}
	if err != nil {
		d.log.Warn("cannot watch the configuration file for changes; reload with SIGHUP or "+
			"`mosaic-watch service reload`", "file", file, "err", err)
		if fsw != nil {
			fsw.Close()
		}
		return
	}
	defer fsw.Close()
	d.log.Debug("watching the configuration file for changes", "file", file)
	timer := time.NewTimer(0) // a change since New, before the watch was in place, counts too
	base := filepath.Base(file)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fsw.Events:
			if !ok {
				return
			}
			// Kubernetes-style mounts swap a symlinked folder (..data), not the file's name.
			if filepath.Base(ev.Name) == base || strings.HasPrefix(filepath.Base(ev.Name), "..") {
				timer.Reset(ConfigDebounce)
			}
		case err, ok := <-fsw.Errors:
			if !ok {
				return
			}
			d.log.Warn("watching the configuration file", "err", err)
		case <-timer.C:
			data, err := os.ReadFile(file)
			if err != nil {
				continue // mid-rename, or removed: the next event brings it back
			}
			sum := sha256.Sum256(data)
			d.reload.errMu.Lock()
			same := sum == d.reload.sum
			d.reload.errMu.Unlock()
			if !same {
				_ = d.Reload(ctx, "the file changed")
			}
		}
	}
}

package daemon

// The first watch of a folder: what happens to the videos already in it (existing_files).

import (
	"context"
	"sync"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/backlog"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

type backlogState struct {
	mu        sync.Mutex
	manifests map[string]*backlog.Manifest // by input; nil entry: no video was held or ignored
	checked   map[string]bool              // first watch looked at in this process
	approved  map[string]bool              // approval seen (it is never taken back)
}

func (b *backlogState) init() {
	b.manifests = map[string]*backlog.Manifest{}
	b.checked = map[string]bool{}
	b.approved = map[string]bool{}
}

// forget drops what is known of removed folders: if one comes back, its record is read again.
func (b *backlogState) forget(removed []config.Folder) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range removed {
		delete(b.manifests, f.Input)
		delete(b.checked, f.Input)
	}
}

// folderByInput finds the configured folder with this input.
func (d *Daemon) folderByInput(input string) (config.Folder, bool) {
	for _, f := range d.config().Folders {
		if f.Input == input {
			return f, true
		}
	}
	return config.Folder{}, false
}

// firstWatch reads the folder's first-watch record, making it if the folder was never watched.
// The intake calls it on the folder's first healthy report, which the watcher sends before any
// of the folder's files.
func (d *Daemon) firstWatch(ctx context.Context, input string) {
	d.backlog.mu.Lock()
	done := d.backlog.checked[input]
	d.backlog.mu.Unlock()
	if done {
		return
	}
	f, ok := d.folderByInput(input)
	if !ok {
		return
	}
	over := d.config().Limits.BacklogConfirmOver
	var m *backlog.Manifest
	var first bool
	d.retry(ctx, "record the first watch of "+f.Name, func() (err error) {
		m, first, err = backlog.FirstWatch(ctx, d.store, f, over, time.Now())
		return err
	})
	if ctx.Err() != nil {
		return
	}
	d.backlog.mu.Lock()
	d.backlog.checked[input] = true
	d.backlog.manifests[input] = m
	d.backlog.mu.Unlock()
	if !first {
		return
	}
	switch {
	case m.Total == 0:
		d.log.Info("first watch of a folder: it holds no videos yet", "folder", f.Name)
	case m.Policy == string(config.ExistingIgnore):
		d.log.Info("first watch of a folder: the videos already there are ignored "+
			"(existing_files: ignore)",
			"folder", f.Name, "videos", m.Total)
	case m.Held > 0:
		d.log.Warn("first watch of a folder: some of the videos already there wait for approval; "+
			"run `mosaic-watch approve "+f.Name+"` or press Approve on the dashboard",
			"folder", f.Name, "videos", m.Total, "start", m.Total-m.Held, "waiting", m.Held)
	default:
		d.log.Info("first watch of a folder: the videos already there are processed", "folder", f.Name,
			"videos", m.Total)
	}
}

// admit applies the first-watch decision to a ready file: false to leave it alone (ignored);
// a held file gets its reason in f.Hold.
func (d *Daemon) admit(ctx context.Context, f *pipeline.File) bool {
	d.backlog.mu.Lock()
	m := d.backlog.manifests[f.Folder]
	approved := d.backlog.approved[f.Folder]
	d.backlog.mu.Unlock()
	decision, existing := m.Lookup(f.Rel, f.Size, f.ModTime)
	if !existing {
		return true
	}
	switch decision {
	case backlog.Ignore:
		d.log.Debug("video already there at the first watch; ignored (existing_files: ignore)",
			"folder", f.Folder, "path", f.Rel)
		return false
	case backlog.Hold:
		if !approved {
			ok, err := backlog.Approved(ctx, d.store, f.Folder)
			if err != nil {
				d.log.Warn("read the approval of a folder; holding the video", "folder", f.Folder, "err", err)
			}
			if approved = ok; ok {
				d.backlog.mu.Lock()
				d.backlog.approved[f.Folder] = true
				d.backlog.mu.Unlock()
			}
		}
		if !approved {
			name := f.Folder
			if cf, ok := d.folderByInput(f.Folder); ok {
				name = cf.Name
			}
			f.Hold = backlog.HoldReason(m, name)
		}
	}
	return true
}

// pendingApproval counts by input the videos held for approval.
func (d *Daemon) pendingApproval(ctx context.Context) map[string]int {
	d.backlog.mu.Lock()
	held := map[string]int{}
	for input, m := range d.backlog.manifests {
		if m != nil && m.Held > 0 && !d.backlog.approved[input] {
			held[input] = m.Held
		}
	}
	d.backlog.mu.Unlock()
	for input := range held {
		if ok, err := backlog.Approved(ctx, d.store, input); err == nil && ok { // approved by the CLI
			d.backlog.mu.Lock()
			d.backlog.approved[input] = true
			d.backlog.mu.Unlock()
			delete(held, input)
		}
	}
	return held
}

// approve lets a folder's held videos start (the dashboard's button).
func (d *Daemon) approve(ctx context.Context, input string) (int, error) {
	n, err := backlog.Approve(ctx, d.store, input, time.Now())
	if err == nil {
		d.backlog.mu.Lock()
		d.backlog.approved[input] = true
		d.backlog.mu.Unlock()
	}
	return n, err
}

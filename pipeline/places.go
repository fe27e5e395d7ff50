package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// A place is one configured folder the pipeline reads or writes: an input, an output or a
// move_to folder. Run records whether it is a mount point (its device differs from its
// parent's). From then on it must still exist and, if it was a mount point, still be one — a
// NAS that comes back has a new device id, which is fine — or the folders that use it are
// degraded: their work waits and nothing is written anywhere else instead. Places are only ever
// created at start ("created if missing"), never while running, so a vanished share is never
// replaced by a fresh empty folder.
type place struct {
	path  string
	input bool // an input folder: never created

	mu sync.Mutex // guards the rest: a reload's health check may look while Run prepares
	// mount and real are set by prepare (at start, or when a reload adds the place).
	mount bool
	// real is the path with every link resolved, as found at start. Anyone who can write to a
	// parent folder can swap the folder for a link to somewhere else; the place must go on
	// naming the folder that was configured and checked, never the new target.
	real    string
	devices []os.FileInfo // the filesystems the folder has been on, newest last (noteDevice)
	away    bool          // seen degraded and not seen back yet
	backAt  time.Time     // when it was last seen back after being away
}

// noteAway and noteBack follow the place's comings and goings. A remounted filesystem may
// reuse device and inode numbers, so identities recorded before it came back prove nothing.
func (pl *place) noteAway() {
	pl.mu.Lock()
	pl.away = true
	pl.mu.Unlock()
}

func (pl *place) noteBack(now time.Time) {
	pl.mu.Lock()
	if pl.away {
		pl.away, pl.backAt = false, now
	}
	pl.mu.Unlock()
}

// cameBackSince reports whether the place went away and came back after t.
func (pl *place) cameBackSince(t time.Time) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.away || pl.backAt.After(t)
}

// degradedError says why a place cannot be used right now.
type degradedError struct{ reason string }

func (e *degradedError) Error() string { return e.reason }

func (pl *place) degraded(role, problem string) error {
	return &degradedError{reason: fmt.Sprintf("%s %s %s", role, pl.path, problem)}
}

// open opens the place as a root for reads and writes that never leave it. It fails with a
// degradedError when the folder is missing or no longer mounted.
func (pl *place) open(role string) (*os.Root, error) {
	r, err := os.OpenRoot(pl.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, pl.degraded(role, "is missing")
		}
		return nil, err
	}
	if err := pl.checkNotRedirected(role, r); err != nil {
		r.Close()
		return nil, err
	}
	if err := pl.checkMounted(role, r); err != nil {
		r.Close()
		return nil, err
	}
	if fi, err := r.Stat("."); err == nil {
		pl.noteDevice(fi)
	}
	return r, nil
}

// noteDevice remembers a filesystem the place's folder has been on (a remount brings a new one).
func (pl *place) noteDevice(fi os.FileInfo) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, d := range pl.devices {
		if sameDevice(d, fi) {
			return
		}
	}
	if len(pl.devices) == maxPlaceDevices {
		pl.devices = pl.devices[1:]
	}
	pl.devices = append(pl.devices, fi)
}

// maxPlaceDevices bounds the filesystems remembered per place.
const maxPlaceDevices = 16

// onOwnDevice reports whether a file with the recorded identity lived on a filesystem the
// place's folder itself has been on (rather than one mounted inside it).
func (pl *place) onOwnDevice(fileID string) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, d := range pl.devices {
		if matchIdentity(fileID, d) != idRemounted {
			return true
		}
	}
	return false
}

// checkNotRedirected verifies that r, opened on the place's path, is the folder at the place's
// real path reached without following any link. A folder on the path swapped for a link (to
// another user's files, or into an input folder) makes the place degraded until it is put
// back; r stays pinned to the folder checked here, whatever is renamed afterwards.
func (pl *place) checkNotRedirected(role string, r *os.Root) error {
	_, real := pl.facts()
	if real == "" {
		return nil
	}
	fi, err := r.Stat(".")
	if err != nil {
		return pl.degraded(role, "cannot be read: "+err.Error())
	}
	want, err := statNoLinks(real)
	if err != nil || !sameFile(fi, want) {
		return pl.degraded(role, "now leads elsewhere: it, or a folder above it, was replaced by a link "+
			"or renamed since mosaic-watch started (it was "+real+"); put it back, or restart "+
			"mosaic-watch if the change is intended")
	}
	return nil
}

// checkMounted verifies that r, opened on the place, is still a mount point if the place was
// one at start. It looks at the open directory itself, so there is no window in which an
// unmount could slip between the check and the use.
func (pl *place) checkMounted(role string, r *os.Root) error {
	if mount, _ := pl.facts(); !mount {
		return nil
	}
	fi, err := r.Stat(".")
	if err != nil {
		return pl.degraded(role, "cannot be read: "+err.Error())
	}
	parent, err := os.Stat(filepath.Dir(pl.path))
	if err != nil {
		return pl.degraded(role, "cannot be checked: "+err.Error())
	}
	if sameDevice(fi, parent) {
		return pl.degraded(role, "is not mounted any more (it was a mount point when mosaic-watch started)")
	}
	return nil
}

// still verifies, right before a publish or a disposal, that the place's path still names the
// directory r was opened on (a long download may outlive a mount) and is still mounted.
func (pl *place) still(role string, r *os.Root) error {
	cur, err := os.Stat(pl.path)
	if err != nil {
		return pl.degraded(role, "is missing")
	}
	fi, err := r.Stat(".")
	if err != nil || !sameFile(fi, cur) {
		return pl.degraded(role, "was unmounted or replaced while in use")
	}
	return pl.checkMounted(role, r)
}

// prepare creates a missing output or move_to folder (inputs are never created) and records
// whether the place is a mount point. It runs once, at start.
func (pl *place) prepare(create bool) error {
	if create {
		if err := os.MkdirAll(pl.path, 0o755); err != nil {
			return err
		}
	}
	real := resolvedPath(pl.path)
	pl.mu.Lock()
	pl.real = real
	pl.mu.Unlock()
	fi, err := os.Stat(pl.path)
	if err != nil {
		return nil // missing: degraded until it appears; not a mount point that we know of
	}
	pl.noteDevice(fi)
	parent, err := os.Stat(filepath.Dir(pl.path))
	if err != nil {
		return nil
	}
	mount := filepath.Dir(pl.path) != pl.path && !sameDevice(fi, parent)
	pl.mu.Lock()
	pl.mount = mount
	pl.mu.Unlock()
	return nil
}

// facts returns what prepare recorded about the place.
func (pl *place) facts() (mount bool, real string) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.mount, pl.real
}

// resolvedPath is path with its links resolved; for a missing folder, its parent's resolved
// path and its name (it must appear there, not behind a link); "" when even the parent is
// missing.
func resolvedPath(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
		return filepath.Join(r, filepath.Base(path))
	}
	return ""
}

// folderPlace names one place a folder uses, with its role for messages.
type folderPlace struct {
	role string
	pl   *place
}

// placesOf lists the places folder f uses: its input, its output and the move_to folders of
// the actions that move.
func (p *Pipeline) placesOf(f *Folder) []folderPlace {
	out := []folderPlace{
		{"input folder", p.place(f.Input)},
		{"output folder", p.place(f.Output)},
	}
	if f.AfterSuccess == "move" {
		out = append(out, folderPlace{"move_to folder", p.place(f.AfterSuccessMoveTo)})
	}
	if f.AfterFailure == "move" {
		out = append(out, folderPlace{"after_failure move_to folder", p.place(f.AfterFailureMoveTo)})
	}
	return out
}

// addPlaces registers the places of folders not known yet, one per path, and returns the new
// ones' paths. Places are never removed: a retired folder's runs still write their outputs.
func (p *Pipeline) addPlaces(folders map[string]*Folder) []string {
	p.placesMu.Lock()
	defer p.placesMu.Unlock()
	var added []string
	add := func(path string, input bool) {
		if path != "" && p.places[path] == nil {
			p.places[path] = &place{path: path, input: input}
			added = append(added, path)
		}
	}
	for _, f := range folders {
		add(f.Input, true)
		add(f.Output, false)
		if f.AfterSuccess == "move" {
			add(f.AfterSuccessMoveTo, false)
		}
		if f.AfterFailure == "move" {
			add(f.AfterFailureMoveTo, false)
		}
	}
	slices.Sort(added)
	return added
}

// place returns the registered place at path.
func (p *Pipeline) place(path string) *place {
	p.placesMu.RLock()
	defer p.placesMu.RUnlock()
	return p.places[path]
}

// preparePlaces creates the missing outputs and move_to folders among paths and records which
// places are mount points. Inputs are never created.
func (p *Pipeline) preparePlaces(paths []string) error {
	for _, path := range paths {
		pl := p.place(path)
		if err := pl.prepare(!pl.input); err != nil {
			return fmt.Errorf("create folder %s: %w", path, err)
		}
		if mount, _ := pl.facts(); mount {
			p.log.Info("folder is a mount point; its work pauses whenever it is not mounted", "path", path)
		}
	}
	return nil
}

// openPlace opens one of f's places for use, marking f degraded when it cannot be used.
func (p *Pipeline) openPlace(f *Folder, role, path string) (*os.Root, error) {
	r, err := p.place(path).open(role)
	if err != nil {
		return nil, p.placeError(f, role, path, err)
	}
	return r, nil
}

// stillThere re-checks an open place right before a publish or a disposal.
func (p *Pipeline) stillThere(f *Folder, role, path string, r *os.Root) error {
	if err := p.place(path).still(role, r); err != nil {
		return p.placeError(f, role, path, err)
	}
	return nil
}

// placeError turns a place's failure into the job's outcome: a degraded place makes the job
// wait for it; a permission problem needs a person; anything else is retried.
func (p *Pipeline) placeError(f *Folder, role, path string, err error) error {
	var de *degradedError
	if errors.As(err, &de) {
		p.place(path).noteAway()
		p.health.degrade(p.log, f, de.reason)
		return waitFolder(de.reason)
	}
	if errors.Is(err, fs.ErrPermission) {
		return attention(fmt.Sprintf("cannot use the %s %s: permission denied", role, path))
	}
	return transient(role+" "+path, err)
}

// folderReady reports, without touching the disk, whether f's work may go on; a degraded
// folder's jobs wait until the health check sees it back.
func (p *Pipeline) folderReady(f *Folder) error {
	if why := p.health.reason(f.Input); why != "" {
		return waitFolder(why)
	}
	return nil
}

// checkFolder looks at every place of f and returns why f cannot be used, or "".
func (p *Pipeline) checkFolder(f *Folder) string {
	why := ""
	for _, fp := range p.placesOf(f) {
		r, err := fp.pl.open(fp.role)
		var de *degradedError
		switch {
		case errors.As(err, &de):
			fp.pl.noteAway()
			if why == "" {
				why = de.reason
			}
		case err == nil:
			r.Close()
			fp.pl.noteBack(p.now())
		}
		// Unreadable for another reason: the steps report it on the job.
	}
	return why
}

// Degraded returns the folders whose work waits because one of their folders (input, output
// or move_to) is missing or not mounted, by input path, with the reason.
func (p *Pipeline) Degraded() map[string]string { return p.health.snapshot() }

// healthLoop re-checks every folder each Recheck, so that a degraded folder is shown as soon
// as it is noticed and its work resumes by itself once it is back.
func (p *Pipeline) healthLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.Recheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.checkHealth()
	}
}

func (p *Pipeline) checkHealth() {
	recovered := false
	for _, f := range p.allFolders() {
		if why := p.checkFolder(f); why != "" {
			p.health.degrade(p.log, f, why)
		} else if p.health.recover(p.log, f) {
			recovered = true
		}
	}
	if recovered {
		for _, s := range p.stages {
			p.wake(s.steps[0])
		}
	}
}

// health is the set of degraded folders.
type health struct {
	mu      sync.Mutex
	reasons map[string]string // folder input -> why its work waits
}

func (h *health) reason(input string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reasons[input]
}

func (h *health) snapshot() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.reasons)
}

func (h *health) degrade(log *slog.Logger, f *Folder, why string) {
	h.mu.Lock()
	prev := h.reasons[f.Input]
	if h.reasons == nil {
		h.reasons = make(map[string]string)
	}
	h.reasons[f.Input] = why
	h.mu.Unlock()
	if prev != why {
		log.Error("folder degraded: its uploads, outputs and source handling wait until it is back; nothing is written elsewhere",
			"folder", f.Name, "reason", why)
	}
}

// recover clears f's degraded state and reports whether it was degraded.
func (h *health) recover(log *slog.Logger, f *Folder) bool {
	h.mu.Lock()
	_, was := h.reasons[f.Input]
	delete(h.reasons, f.Input)
	h.mu.Unlock()
	if was {
		log.Info("folder is back; its work resumes", "folder", f.Name)
	}
	return was
}

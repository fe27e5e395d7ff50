// Package backlog decides what happens to the videos already in a folder the first time it is
// watched (existing_files: process, ignore or confirm), so pointing mosaic-watch at an archive
// never starts thousands of billed runs by surprise.
//
// The first time a folder is watched, its videos are listed (the watcher's Survey) and each
// gets a decision, recorded in the store's meta table before the watcher reports any of them:
// process, hold (until `approve`) or ignore. The record survives restarts, so a file held once
// stays held, and a file dropped later is never in it: new files are never held.
package backlog

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

// Decisions for a file found at the first watch.
const (
	Process = "process"
	Hold    = "hold"
	Ignore  = "ignore"
)

// Meta keys, per folder input.
func manifestKey(input string) string { return "backlog:" + input }
func approvedKey(input string) string { return "backlog_approved:" + input }

// Entry is one video found at the first watch.
type Entry struct {
	Size     int64  `json:"size"`
	MtimeNS  int64  `json:"mtime_ns"`
	Decision string `json:"decision"`
}

// Manifest is a folder's first watch: when, under which policy, and the videos found then.
type Manifest struct {
	Since  time.Time        `json:"since"`
	Policy string           `json:"policy"` // existing_files at the first watch
	Over   int              `json:"over"`   // limits.backlog_confirm_over at the first watch
	Total  int              `json:"total"`  // videos found
	Files  map[string]Entry `json:"files"`  // by relative path; only non-process decisions when many
	Held   int              `json:"held"`   // entries held for approval
}

// Lookup returns the decision for a file version, and whether the file was there at the first
// watch (a file changed since is a new version and is not).
func (m *Manifest) Lookup(rel string, size int64, mtime time.Time) (string, bool) {
	if m == nil {
		return "", false
	}
	e, ok := m.Files[rel]
	if !ok || e.Size != size || e.MtimeNS != mtime.UnixNano() {
		return "", false
	}
	return e.Decision, true
}

// Store is the part of the job store the backlog needs.
type Store interface {
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}

// Load returns a folder's manifest, or nil if the folder was never watched.
func Load(ctx context.Context, st Store, input string) (*Manifest, error) {
	raw, err := st.GetMeta(ctx, manifestKey(input))
	if err != nil || raw == "" {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("read the first-watch record of %s: %w", input, err)
	}
	return &m, nil
}

// Survey lists the videos in a folder now and decides each by the folder's policy: the first
// over (in path order) start under confirm, the rest are held.
func Survey(ctx context.Context, f config.Folder, over int, now time.Time) (*Manifest, error) {
	type found struct {
		rel   string
		entry Entry
	}
	var videos []found
	err := watcher.Survey(ctx, f.WatchRoot(), func(e watcher.Entry) error {
		if e.Match.Candidate {
			videos = append(videos, found{e.Rel, Entry{Size: e.Size, MtimeNS: e.ModTime.UnixNano()}})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the videos already in %s: %w", f.Input, err)
	}
	slices.SortFunc(videos, func(a, b found) int {
		switch {
		case a.rel < b.rel:
			return -1
		case a.rel > b.rel:
			return 1
		}
		return 0
	})
	m := &Manifest{Since: now.UTC(), Policy: string(f.ExistingFiles), Over: over, Total: len(videos),
		Files: map[string]Entry{}}
	for i, v := range videos {
		switch {
		case f.ExistingFiles == config.ExistingIgnore:
			v.entry.Decision = Ignore
		case f.ExistingFiles == config.ExistingConfirm && i >= over:
			v.entry.Decision = Hold
			m.Held++
		default:
			continue // processed like any new file: no need to remember it
		}
		m.Files[v.rel] = v.entry
	}
	return m, nil
}

// FirstWatch returns the folder's manifest, making and recording it if the folder was never
// watched (first is then true).
func FirstWatch(ctx context.Context, st Store, f config.Folder, over int, now time.Time) (
	m *Manifest, first bool, err error) {
	if m, err = Load(ctx, st, f.Input); err != nil || m != nil {
		return m, false, err
	}
	if m, err = Survey(ctx, f, over, now); err != nil {
		return nil, false, err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, false, err
	}
	if err := st.SetMeta(ctx, manifestKey(f.Input), string(raw)); err != nil {
		return nil, false, fmt.Errorf("record the first watch of %s: %w", f.Input, err)
	}
	return m, true, nil
}

// Approved reports whether the held videos of a folder were approved.
func Approved(ctx context.Context, st Store, input string) (bool, error) {
	v, err := st.GetMeta(ctx, approvedKey(input))
	return v != "", err
}

// HoldReason is the reason recorded on a held job.
func HoldReason(m *Manifest, name string) string {
	return fmt.Sprintf("%s: one of %d videos already in the folder when it was first watched "+
		"(existing_files: confirm starts the first %d); run `mosaic-watch approve %s` or press Approve "+
		"on the dashboard", pipeline.WaitApproval, m.Total, m.Over, name)
}

// Approve lets a folder's held videos start: those already recorded as waiting jobs, and those
// the watcher has not reported yet. It works from any process; it returns how many jobs it
// resumed.
func Approve(ctx context.Context, st store.Store, input string, now time.Time) (int, error) {
	if err := st.SetMeta(ctx, approvedKey(input), now.UTC().Format(time.RFC3339)); err != nil {
		return 0, fmt.Errorf("record the approval: %w", err)
	}
	return pipeline.ResumeWaiting(ctx, st, input, pipeline.WaitApproval, 0, now,
		"approved: videos already in the folder may start")
}

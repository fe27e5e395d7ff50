package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
)

const (
	diskFloorBytes   = 1 << 30 // free space below min(1 GiB, 1% of the disk) counts as full
	diskFloorPercent = 1
)

type healthReport struct {
	OK      bool     `json:"ok"`
	Reasons []string `json:"reasons,omitempty"`
}

// handleHealth: 200 when the database answers and every folder is usable, else 503 with why.
func (s *httpServer) handleHealth(w http.ResponseWriter, r *http.Request) {
	rep := s.health(r.Context())
	code := http.StatusOK
	if !rep.OK {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rep)
}

func (s *httpServer) health(ctx context.Context) healthReport {
	var reasons []string
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.d.store.GetMeta(ctx, "instance_id"); err != nil {
		reasons = append(reasons, "state database unusable: "+err.Error())
	}
	health := s.d.folderHealth()
	for _, f := range s.d.cfg.Folders {
		if why := health[f.Input]; why != "" {
			reasons = append(reasons, fmt.Sprintf("folder %s degraded: %s", f.Name, why))
		}
	}
	if why := s.d.pipe.Paused(); why != "" {
		reasons = append(reasons, "work paused: "+why)
	}
	reasons = append(reasons, s.diskProblems()...)
	return healthReport{OK: len(reasons) == 0, Reasons: reasons}
}

// diskProblems reports the state directory and output folders whose disk is (nearly) full.
func (s *httpServer) diskProblems() []string {
	paths := []string{s.d.cfg.StateDir}
	for _, f := range s.d.cfg.Folders {
		paths = append(paths, f.Output)
	}
	var out []string
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		free, total, err := s.diskFree(p)
		if err != nil || total == 0 {
			continue // unknown (no such dir yet, or not supported here): not a reason to fail health
		}
		floor := min(uint64(diskFloorBytes), total*diskFloorPercent/100)
		if free < floor {
			out = append(out, fmt.Sprintf("disk full: %s has %s free (floor %s)", p, humanSize(int64(free)), humanSize(int64(floor))))
		}
	}
	return out
}

// folderHealth copies the watcher's folder health: input -> reason it is degraded ("" = healthy).
func (d *daemon) folderHealth() map[string]string {
	d.healthMu.Lock()
	defer d.healthMu.Unlock()
	return maps.Clone(d.health)
}

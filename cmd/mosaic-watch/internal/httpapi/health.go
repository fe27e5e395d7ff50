package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

const (
	diskFloorBytes   = 1 << 30 // free space below min(1 GiB, 1% of the disk) counts as full
	diskFloorPercent = 1
)

// HealthReport is what /healthz answers.
type HealthReport struct {
	OK      bool     `json:"ok"`
	Status  string   `json:"status"` // "ok" or "degraded"
	Reasons []string `json:"reasons,omitempty"`
}

// Health statuses.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"
)

// handleHealth: 200 when the database answers and every folder is usable, else 503 with why.
// The reasons name folders, paths, run ids and error text: where a token is configured (always,
// on a listener other machines can reach) a caller without it hears only ok or degraded.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	rep := s.health(r.Context())
	code := http.StatusOK
	if !rep.OK {
		code = http.StatusServiceUnavailable
	}
	if (s.hasToken || s.opts.Exposed) && s.tokenOK(r) == noToken {
		rep.Reasons = nil
	}
	writeJSON(w, code, rep)
}

func (s *Server) health(ctx context.Context) HealthReport {
	var reasons []string
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.opts.Jobs.GetMeta(ctx, "instance_id"); err != nil {
		reasons = append(reasons, "state database unusable: "+err.Error())
	}
	if s.opts.Live != nil {
		if why := s.opts.Live.ConfigError(); why != "" {
			reasons = append(reasons, "config reload failed (the previous configuration stays in "+
				"effect): "+why)
		}
	}
	health := s.folderHealth()
	for _, f := range s.folders() {
		if why := health[f.Input]; why != "" {
			reasons = append(reasons, fmt.Sprintf("folder %s degraded: %s", f.Name, why))
		}
	}
	if why := s.opts.Work.Paused(); why != "" {
		reasons = append(reasons, "work paused: "+why)
	}
	reasons = append(reasons, s.diskProblems()...)
	if len(reasons) > 0 {
		return HealthReport{Status: HealthDegraded, Reasons: reasons}
	}
	return HealthReport{OK: true, Status: HealthOK}
}

// diskProblems reports the state directory and output folders whose disk is (nearly) full.
func (s *Server) diskProblems() []string {
	paths := []string{s.opts.StateDir}
	for _, f := range s.folders() {
		paths = append(paths, f.Output)
	}
	var out []string
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		free, total, err := s.opts.DiskFree(p)
		if err != nil || total == 0 {
			continue // unknown (no such dir yet, or not supported here): not a reason to fail health
		}
		floor := min(uint64(diskFloorBytes), total*diskFloorPercent/100)
		if free < floor {
			out = append(out, fmt.Sprintf("disk full: %s has %s free (floor %s)", p,
				pipeline.FormatBytes(int64(free)), pipeline.FormatBytes(int64(floor))))
		}
	}
	return out
}

// folderHealth is why each folder (by input) is degraded; "" or absent = healthy.
func (s *Server) folderHealth() map[string]string {
	if s.opts.FolderHealth == nil {
		return nil
	}
	return s.opts.FolderHealth()
}

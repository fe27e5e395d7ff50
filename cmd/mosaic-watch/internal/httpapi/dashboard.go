package httpapi

import (
	"embed"
	"html/template"
	"net/http"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

//go:embed web/*.html
var webFS embed.FS

var dashboardTmpl = template.Must(template.New("dashboard.html").Funcs(template.FuncMap{
	"size": pipeline.FormatBytes,
	"ago":  func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
	"clock": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Local().Format("15:04:05")
	},
}).ParseFS(webFS, "web/dashboard.html"))

var newRunTmpl = template.Must(template.ParseFS(webFS, "web/newrun.html"))

const dashboardRefresh = 3 // seconds

type dashboardData struct {
	Version   string
	Now       time.Time
	Refresh   int
	Health    HealthReport
	Paused    string
	Notices   []string
	Folders   []folderRow
	States    []store.Status
	Active    []activeRow
	Waiting   []jobview.Job
	Problems  []jobview.Job
	Finished  []jobview.Job
	CSRF      string
	TotalJobs int
	Credits   *pipeline.CreditsRecord // nil until the daemon read the balance
	Shared    []sharedRow             // folders whose agent another client also runs
	// Instances are the daemons sharing the job store; SharedStore says the store is shared.
	Instances   []jobview.Instance
	SharedStore bool
}

type sharedRow struct {
	Folder, AgentID string
	Since           time.Time
	RunIDs          []string
}

type folderRow struct {
	Name, Input, Reason string
	Healthy             bool
	Counts              []stateCount
	PendingApproval     int // videos held by existing_files: confirm
}

type stateCount struct {
	State store.Status
	N     int
}

type activeRow struct {
	jobview.Job
	Phase   string
	Done    int64
	Total   int64
	Percent int
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	ov, err := s.overview(r.Context())
	if err != nil {
		s.internalError(w, "dashboard", err)
		return
	}
	data := dashboardData{
		Version: s.opts.Version, Now: time.Now(), Refresh: dashboardRefresh,
		Health: s.health(r.Context()), Paused: s.opts.Work.Paused(), States: jobview.States,
		CSRF: s.csrf, Finished: ov.Finished, Waiting: ov.Waiting,
		Instances: ov.Instances, SharedStore: s.opts.Instances != nil,
	}
	var pending map[string]int
	if s.opts.Live != nil {
		data.Notices = s.opts.Live.Notices()
		pending = s.opts.Live.PendingApproval(r.Context())
	}
	health := s.folderHealth()
	for _, f := range s.folders() {
		reason := health[f.Input]
		row := folderRow{Name: f.Name, Input: f.Input, Reason: reason, Healthy: reason == "",
			PendingApproval: pending[f.Input]}
		for _, st := range jobview.States {
			n := ov.Counts[f.Name][st]
			row.Counts = append(row.Counts, stateCount{st, n})
			data.TotalJobs += n
		}
		data.Folders = append(data.Folders, row)
	}
	progress := s.opts.Work.Progress()
	for _, v := range ov.Active {
		row := activeRow{Job: v}
		if p, ok := progress[v.ID]; ok {
			row.Phase, row.Done, row.Total = p.Phase, p.Done, p.Total
			if p.Total > 0 {
				row.Percent = int(min(100, p.Done*100/p.Total))
			}
		}
		data.Active = append(data.Active, row)
	}
	data.Problems = append(append(data.Problems, ov.Attention...), ov.Failed...)
	if c, err := pipeline.LoadCredits(r.Context(), s.opts.Jobs); err == nil {
		data.Credits = c
	}
	for _, f := range s.folders() {
		sa, err := pipeline.LoadSharedAgent(r.Context(), s.opts.Jobs, f.AgentID)
		if err == nil && sa != nil {
			data.Shared = append(data.Shared, sharedRow{f.Name, f.AgentID, sa.Since, sa.RunIDs})
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := dashboardTmpl.Execute(w, data); err != nil {
		s.log.Warn("render dashboard", "err", err)
	}
}

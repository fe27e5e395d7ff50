package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// JobsPage is GET /api/jobs: jobs in the same shape `status --json` prints them.
type JobsPage struct {
	Jobs   []jobview.Job `json:"jobs"`
	Limit  int           `json:"limit"`
	Offset int           `json:"offset"`
}

const maxPageSize = 1000

// handleStatus is exactly what `status --json` prints.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	ov, err := s.overview(r.Context())
	if err != nil {
		s.internalError(w, "status", err)
		return
	}
	writeJSON(w, http.StatusOK, ov)
}

// overview is the overview `status --json` prints, so the API, the dashboard and the CLI agree.
func (s *Server) overview(ctx context.Context) (*jobview.Overview, error) {
	names := s.names()
	ov, err := jobview.Load(ctx, s.opts.Jobs, names, false)
	if err != nil {
		return nil, err
	}
	for input, why := range s.folderHealth() {
		if why != "" {
			if ov.Degraded == nil {
				ov.Degraded = make(map[string]string)
			}
			ov.Degraded[names.Of(input)] = why
		}
	}
	if s.opts.Instances != nil {
		if ov.Instances, err = s.opts.Instances(ctx); err != nil {
			return nil, err
		}
	}
	return ov, nil
}

// handleJobs: GET /api/jobs?state=failed,attention&folder=NAME&path=sub/dir&limit=50&offset=100
func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, problem := s.jobFilter(q)
	if problem != "" {
		writeJSONError(w, http.StatusBadRequest, problem)
		return
	}
	jobs, err := s.opts.Jobs.List(r.Context(), f)
	if err != nil {
		s.internalError(w, "list jobs", err)
		return
	}
	page := JobsPage{Jobs: make([]jobview.Job, 0, len(jobs)), Limit: f.Limit, Offset: f.Offset}
	names := s.names()
	for _, j := range jobs {
		page.Jobs = append(page.Jobs, jobview.Of(names, j))
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) jobFilter(q url.Values) (store.Filter, string) {
	f := store.Filter{Limit: 100, Path: strings.Trim(q.Get("path"), "/")}
	for _, v := range q["state"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if st == "" {
				continue
			}
			if !jobview.KnownState(store.Status(st)) {
				return f, "unknown state " + strconv.Quote(st) +
					" (active, retrying, waiting, attention, failed, done, skipped)"
			}
			f.Status = append(f.Status, store.Status(st))
		}
	}
	if name := q.Get("folder"); name != "" {
		for _, c := range s.folders() {
			if c.Name == name || c.Input == name {
				f.Folder = c.Input
			}
		}
		if f.Folder == "" {
			return f, "unknown folder " + strconv.Quote(name)
		}
	}
	var ok bool
	if f.Limit, ok = intParam(q, "limit", f.Limit, 1, maxPageSize); !ok {
		return f, "limit must be a number from 1 to " + strconv.Itoa(maxPageSize)
	}
	if f.Offset, ok = intParam(q, "offset", 0, 0, 1<<31); !ok {
		return f, "offset must be a number >= 0"
	}
	return f, ""
}

func intParam(q url.Values, key string, def, lo, hi int) (int, bool) {
	v := q.Get(key)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= lo && n <= hi
}

// handleJob: GET /api/jobs/{id}, the job with its history (one element of `status JOB --json`).
func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.lookupJob(w, r)
	if !ok {
		return
	}
	v, err := jobview.WithHistory(r.Context(), s.opts.Jobs, s.names(), *j)
	if err != nil {
		s.internalError(w, "job history", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) lookupJob(w http.ResponseWriter, r *http.Request) (*store.Job, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeJSONError(w, http.StatusBadRequest, "job id must be a positive number")
		return nil, false
	}
	j, err := s.opts.Jobs.Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeJSONError(w, http.StatusNotFound, "no job "+strconv.FormatInt(id, 10))
		return nil, false
	}
	if err != nil {
		s.internalError(w, "get job", err)
		return nil, false
	}
	return j, true
}

// handleNewRun: GET /jobs/{id}/new-run, the dashboard's confirmation before it starts a new,
// billed run for a job whose run is unknown: it shows why, with the candidate runs, and the
// form that asks for it (the dashboard runs no scripts, so a page confirms instead of a dialog).
func (s *Server) handleNewRun(w http.ResponseWriter, r *http.Request) {
	j, ok := s.lookupJob(w, r)
	if !ok {
		return
	}
	if j.Status != store.StatusFailed && j.Status != store.StatusAttention {
		http.Redirect(w, r, "/#job-"+strconv.FormatInt(j.ID, 10), http.StatusSeeOther)
		return
	}
	data := struct {
		Job  jobview.Job
		CSRF string
	}{jobview.Of(s.names(), *j), s.csrf}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := newRunTmpl.Execute(w, data); err != nil {
		s.log.Warn("render new-run page", "err", err)
	}
}

// handleRetry: POST /api/jobs/{id}/retry, like `mosaic-watch retry JOB`; with new_run=1 (form
// field or query) like `mosaic-watch retry --new-run JOB`. Browsers must prove the
// request comes from the dashboard (same origin and its form token); scripts sending a bearer
// token cannot be driven cross-site, so they need neither.
func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) {
	fromPage, ok := s.formAllowed(w, r)
	if !ok {
		return
	}
	j, ok := s.lookupJob(w, r)
	if !ok {
		return
	}
	prepare := pipeline.PrepareRetry
	if r.FormValue("new_run") == "1" { // a new, billed run: asked for explicitly
		prepare = pipeline.PrepareNewRun
	}
	what, err := prepare(j, time.Now())
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	err = s.opts.Jobs.Reopen(r.Context(), j, "retry requested (dashboard/API): "+what)
	if err != nil {
		if errors.Is(err, store.ErrChanged) {
			writeJSONError(w, http.StatusConflict,
				"the job changed meanwhile (another retry?): reload and look again")
			return
		}
		s.internalError(w, "save retry", err)
		return
	}
	s.log.Info("retry requested", "job", j.ID, "path", j.RelPath, "what", what)
	if fromPage && r.Header.Get("X-CSRF-Token") == "" {
		http.Redirect(w, r, "/#job-"+strconv.FormatInt(j.ID, 10), http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": j.ID, "retry": what})
}

// formAllowed checks a state-changing request: browsers must prove it comes from the dashboard
// (same origin and its form token); fromPage reports a browser request.
func (s *Server) formAllowed(w http.ResponseWriter, r *http.Request) (fromPage, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, formMaxBody)
	fromPage = s.tokenOK(r) != bearerToken
	if !fromPage {
		return false, true
	}
	if !sameOrigin(r) {
		writeJSONError(w, http.StatusForbidden, "cross-origin request refused")
		return true, false
	}
	given := r.Header.Get("X-CSRF-Token")
	if given == "" {
		given = r.PostFormValue("csrf")
	}
	if !constantEqual(given, s.csrf) {
		writeJSONError(w, http.StatusForbidden, "missing or stale form token: reload the page")
		return true, false
	}
	return true, true
}

// handleApprove: POST /api/folders/{name}/approve, like `mosaic-watch approve NAME`: the videos
// already in the folder when it was first watched, held by existing_files: confirm, may start.
func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) {
	fromPage, ok := s.formAllowed(w, r)
	if !ok {
		return
	}
	if s.opts.Live == nil {
		writeJSONError(w, http.StatusNotFound, "approvals are not available")
		return
	}
	name := r.PathValue("name")
	var input string
	for _, f := range s.folders() {
		if f.Name == name || f.Input == name {
			input = f.Input
		}
	}
	if input == "" {
		writeJSONError(w, http.StatusNotFound, "unknown folder "+strconv.Quote(name))
		return
	}
	n, err := s.opts.Live.Approve(r.Context(), input)
	if err != nil {
		s.internalError(w, "approve", err)
		return
	}
	s.log.Info("backlog approved (dashboard/API)", "folder", name, "jobs", n)
	if fromPage && r.Header.Get("X-CSRF-Token") == "" {
		http.Redirect(w, r, "/#folders", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"folder": name, "resumed": n})
}

// sameOrigin refuses a request a browser marks as coming from another site. Requests without
// any of these headers (not from a browser) still need the form token.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true
	}
	u, err := url.Parse(src)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func constantEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

func (s *Server) internalError(w http.ResponseWriter, what string, err error) {
	s.log.Error("http: "+what, "err", err)
	writeJSONError(w, http.StatusInternalServerError, what+" failed; see the daemon log")
}

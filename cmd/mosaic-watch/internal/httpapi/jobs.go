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
	return jobview.Load(ctx, s.opts.Jobs, s.names, false)
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
	for _, j := range jobs {
		page.Jobs = append(page.Jobs, jobview.Of(s.names, j))
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
					" (active, retrying, attention, failed, done, skipped)"
			}
			f.Status = append(f.Status, store.Status(st))
		}
	}
	if name := q.Get("folder"); name != "" {
		for _, c := range s.opts.Folders {
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
	v, err := jobview.WithHistory(r.Context(), s.opts.Jobs, s.names, *j)
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

// handleRetry: POST /api/jobs/{id}/retry, like `mosaic-watch retry JOB`. Browsers must prove the
// request comes from the dashboard (same origin and its form token); scripts sending the right
// bearer token cannot be driven cross-site, so they need neither. A Bearer header is no proof
// of anything when no token is configured.
func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) {
	fromPage := s.tokenOK(r) != bearerToken
	if fromPage {
		if !sameOrigin(r) {
			writeJSONError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, formMaxBody)
		given := r.Header.Get("X-CSRF-Token")
		if given == "" {
			given = r.PostFormValue("csrf")
		}
		if !constantEqual(given, s.csrf) {
			writeJSONError(w, http.StatusForbidden, "missing or stale form token: reload the page")
			return
		}
	}
	j, ok := s.lookupJob(w, r)
	if !ok {
		return
	}
	what, err := pipeline.PrepareRetry(j, time.Now())
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

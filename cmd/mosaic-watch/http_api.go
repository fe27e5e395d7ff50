package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// jobsPage is GET /api/jobs: jobs in the same shape `status --json` prints them.
type jobsPage struct {
	Jobs   []jobView `json:"jobs"`
	Limit  int       `json:"limit"`
	Offset int       `json:"offset"`
}

const maxPageSize = 1000

// handleStatus is exactly what `status --json` prints.
func (s *httpServer) handleStatus(w http.ResponseWriter, r *http.Request) {
	ov, err := s.overview(r.Context())
	if err != nil {
		s.internalError(w, "status", err)
		return
	}
	writeJSON(w, http.StatusOK, ov)
}

// overview reuses the CLI's printOverview so the API, the dashboard and `status --json` agree.
func (s *httpServer) overview(ctx context.Context) (*overview, error) {
	var buf bytes.Buffer
	if err := printOverview(ctx, &buf, s.d.store, s.d.cfg, true, false); err != nil {
		return nil, err
	}
	var ov overview
	if err := json.Unmarshal(buf.Bytes(), &ov); err != nil {
		return nil, err
	}
	return &ov, nil
}

// handleJobs: GET /api/jobs?state=failed,attention&folder=NAME&path=sub/dir&limit=50&offset=100
func (s *httpServer) handleJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, problem := s.jobFilter(q)
	if problem != "" {
		writeJSONError(w, http.StatusBadRequest, problem)
		return
	}
	jobs, err := s.d.store.List(r.Context(), f)
	if err != nil {
		s.internalError(w, "list jobs", err)
		return
	}
	page := jobsPage{Jobs: make([]jobView, 0, len(jobs)), Limit: f.Limit, Offset: f.Offset}
	for _, j := range jobs {
		page.Jobs = append(page.Jobs, viewJob(s.d.cfg, j))
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *httpServer) jobFilter(q url.Values) (store.Filter, string) {
	f := store.Filter{Limit: 100, Path: strings.Trim(q.Get("path"), "/")}
	for _, v := range q["state"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if st == "" {
				continue
			}
			if !knownStatus(store.Status(st)) {
				return f, "unknown state " + strconv.Quote(st) + " (active, retrying, attention, failed, done, skipped)"
			}
			f.Status = append(f.Status, store.Status(st))
		}
	}
	if name := q.Get("folder"); name != "" {
		for _, c := range s.d.cfg.Folders {
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

func knownStatus(st store.Status) bool {
	for _, s := range statusOrder {
		if s == st {
			return true
		}
	}
	return false
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
func (s *httpServer) handleJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.lookupJob(w, r)
	if !ok {
		return
	}
	v := viewJob(s.d.cfg, *j)
	events, err := s.d.store.History(r.Context(), j.ID)
	if err != nil {
		s.internalError(w, "job history", err)
		return
	}
	for _, e := range events {
		v.History = append(v.History, eventView{At: e.At, Step: e.Step, Status: e.Status, Message: e.Message})
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *httpServer) lookupJob(w http.ResponseWriter, r *http.Request) (*store.Job, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeJSONError(w, http.StatusBadRequest, "job id must be a positive number")
		return nil, false
	}
	j, err := s.d.store.Get(r.Context(), id)
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
// request comes from the dashboard (same origin and its form token); scripts sending a bearer
// token cannot be driven cross-site, so they need neither.
func (s *httpServer) handleRetry(w http.ResponseWriter, r *http.Request) {
	fromPage := !hasBearer(r)
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
	if err := s.d.store.Reopen(r.Context(), j, "retry requested (dashboard/API): "+what); err != nil {
		if errors.Is(err, store.ErrChanged) {
			writeJSONError(w, http.StatusConflict, "the job changed meanwhile (another retry?): reload and look again")
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

func hasBearer(r *http.Request) bool {
	scheme, _, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer")
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

func (s *httpServer) internalError(w http.ResponseWriter, what string, err error) {
	s.log.Error("http: "+what, "err", err)
	writeJSONError(w, http.StatusInternalServerError, what+" failed; see the daemon log")
}

package mosaictest

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const cursorPrefix = "fake-cursor:"

// encodeCursor makes an opaque cursor pointing after run r in listing order.
func encodeCursor(r *run) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix +
		strconv.FormatInt(r.createdAt.UnixNano(), 10) + ":" + strconv.FormatInt(r.seq, 10)))
}

func decodeCursor(c string) (*run, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return nil, false
	}
	at, seq, ok := strings.Cut(strings.TrimPrefix(string(b), cursorPrefix), ":")
	ns, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || n <= 0 {
		return nil, false
	}
	return &run{createdAt: time.Unix(0, ns).UTC(), seq: n}, true
}

func parseTimeParam(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

var validStatuses = map[string]bool{statusRunning: true, statusCompleted: true, statusPartial: true, statusFailed: true, statusCancelled: true}

// listQuery is a parsed list-runs query.
type listQuery struct {
	agentID  string
	limit    int
	after    *run // cursor: only runs listed after this one (nil = from the newest)
	statuses map[string]bool
	from, to time.Time
}

func parseListQuery(r *http.Request) (*listQuery, int, string, string) {
	q := r.URL.Query()
	lq := &listQuery{limit: 25, agentID: r.PathValue("agent_id")}
	if lq.agentID == "" {
		lq.agentID = q.Get("agent_id")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, http.StatusUnprocessableEntity, "parameter_out_of_range", "limit must be an integer between 1 and 100"
		}
		lq.limit = n
	}
	if v := q.Get("cursor"); v != "" {
		n, ok := decodeCursor(v)
		if !ok {
			return nil, http.StatusBadRequest, "validation_error", "Invalid cursor"
		}
		lq.after = n
	}
	if v := q.Get("status"); v != "" {
		lq.statuses = map[string]bool{}
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if !validStatuses[st] {
				return nil, http.StatusBadRequest, "validation_error", "Invalid status filter: " + st
			}
			lq.statuses[st] = true
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &lq.from}, {"to", &lq.to}} {
		if v := q.Get(p.name); v != "" {
			t, ok := parseTimeParam(v)
			if !ok {
				return nil, http.StatusBadRequest, "validation_error", p.name + " must be an ISO 8601 timestamp"
			}
			*p.dst = t
		}
	}
	return lq, 0, "", ""
}

func (lq *listQuery) match(r *run) bool {
	if lq.agentID != "" && r.agent.id != lq.agentID {
		return false
	}
	if lq.after != nil && compareRuns(r, lq.after) >= 0 {
		return false
	}
	if lq.statuses != nil && !lq.statuses[r.status] {
		return false
	}
	if !lq.from.IsZero() && r.createdAt.Before(lq.from) {
		return false
	}
	if !lq.to.IsZero() && r.createdAt.After(lq.to) {
		return false
	}
	return true
}

// handleListRuns serves GET /agent/{agent_id}/runs and GET /agent_runs, newest first.
func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) {
	lq, status, code, detail := parseListQuery(r)
	if lq == nil {
		writeError(w, status, code, detail)
		return
	}
	s.mu.Lock()
	if r.PathValue("agent_id") != "" && s.agents[lq.agentID] == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", "Agent not found")
		return
	}
	s.advanceAllLocked()
	root := s.requestRoot(r)
	items := []any{}
	var next any
	var last *run
	for i := len(s.runOrder) - 1; i >= 0; i-- {
		run := s.runOrder[i]
		if !lq.match(run) {
			continue
		}
		if len(items) == lq.limit {
			next = encodeCursor(last)
			break
		}
		items = append(items, s.listItemLocked(run, root))
		last = run
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"runs": items, "next_cursor": next})
}

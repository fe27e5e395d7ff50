package mosaic

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ListRunsOptions filters GET /agent/{id}/runs or GET /agent_runs.
type ListRunsOptions struct {
	AgentID  string    // "" => org-wide GET /agent_runs, else GET /agent/{id}/runs
	Status   []string  // comma-joined "status" filter
	From, To time.Time // zero = unset; RFC 3339
	Limit    int       // page size 1..100 (0 => 25)
	MaxRuns  int       // stop after this many (0 = follow next_cursor to the end)
}

const maxListPages = 10000 // a server handing out cursors forever must not hang us

// ListRuns pages through runs, following next_cursor verbatim with identical filters until it is
// null or MaxRuns runs were collected. Each page request is retried (safe).
func (c *Client) ListRuns(ctx context.Context, opts ListRunsOptions) ([]Run, error) {
	limit := opts.Limit
	switch {
	case limit <= 0:
		limit = 25
	case limit > 100:
		limit = 100
	}
	q := url.Values{}
	q.Set("limit", strconv.Itoa(limit))
	if len(opts.Status) > 0 {
		q.Set("status", strings.Join(opts.Status, ","))
	}
	if !opts.From.IsZero() {
		q.Set("from", opts.From.UTC().Format(time.RFC3339))
	}
	if !opts.To.IsZero() {
		q.Set("to", opts.To.UTC().Format(time.RFC3339))
	}
	segments := []string{"agent_runs"}
	if opts.AgentID != "" {
		segments = []string{"agent", opts.AgentID, "runs"}
	}

	var runs []Run
	seen := map[string]bool{}
	cursor := ""
	for page := 0; page < maxListPages; page++ {
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var resp struct {
			Runs       []runJSON `json:"runs"`
			NextCursor *string   `json:"next_cursor"`
		}
		call := apiCall{op: "list runs", method: http.MethodGet, url: c.endpoint(q, segments...), safe: true}
		if err := c.doJSON(ctx, call, &resp); err != nil {
			return runs, err
		}
		for i := range resp.Runs {
			r := resp.Runs[i].toRun("")
			c.noteStatus(r.ID, r.Status)
			runs = append(runs, r)
			if opts.MaxRuns > 0 && len(runs) >= opts.MaxRuns {
				return runs, nil
			}
		}
		if resp.NextCursor == nil || *resp.NextCursor == "" {
			return runs, nil
		}
		if seen[*resp.NextCursor] {
			return runs, fmt.Errorf("mosaic: list runs: server repeated a cursor; stopping after %d runs", len(runs))
		}
		seen[*resp.NextCursor] = true
		cursor = *resp.NextCursor
	}
	return runs, fmt.Errorf("mosaic: list runs: more than %d pages; stopping", maxListPages)
}

package store

import (
	"strings"
	"testing"
)

func explain(t *testing.T, s *SQLite, query string, args ...any) string {
	t.Helper()
	rows, err := s.r.QueryContext(testCtx(t), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var details []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		details = append(details, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(details, "\n")
}

// The queries the daemon runs all the time must be served by their indexes, not by scanning
// every job ever seen. Checked on the exact query text the code uses. SQLite-only: the plans are
// SQLite's (PostgreSQL's planner picks by table statistics; its claim query is not the same text).
func TestQueryPlansUseIndexes(t *testing.T) {
	s := openSQLite(t)
	jobs := addN(t, s, 300)
	for _, j := range jobs[:250] {
		j.Status = StatusDone
		mustSave(t, s, &j, "")
	}
	now := t0.UnixMilli()
	tests := []struct {
		name, query string
		args        []any
		index       string
	}{
		{"claim any step", dueQuery(0), []any{now, now, 10}, "jobs_due"},
		{"claim some steps", dueQuery(3), []any{now, now, StepFound, StepSettled, StepUploaded, 10}, "jobs_due"},
		{"open at step", openAtStepSQL, []any{StepRunStarted}, "jobs_due"},
		{"claim pre-check", dueExistsQuery(2), []any{now, now, StepFound, StepSettled}, "jobs_due"},
		{"jobs at", jobsAtSQL, []any{"f", "v001.mov"}, "sqlite_autoindex_jobs_1"},
		{"find by content", findByContentSQL, []any{"f", "abc", 0}, "jobs_content"},
		{"run id taken", runIDTakenSQL, []any{"run-1"}, "jobs_run_id"},
		{"release owner", "SELECT id FROM jobs WHERE owner = ? AND owner <> ''", []any{"w1"}, "jobs_owner"},
		{"history", historySQL, []any{1}, "events_job"},
	}
	for _, tt := range tests {
		plan := explain(t, s, tt.query, tt.args...)
		if !strings.Contains(plan, "USING INDEX "+tt.index) && !strings.Contains(plan, "USING COVERING INDEX "+tt.index) {
			t.Errorf("%s: plan does not use %s:\n%s", tt.name, tt.index, plan)
		}
		if strings.HasPrefix(tt.name, "claim") && strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: plan sorts instead of walking the index:\n%s", tt.name, plan)
		}
	}
}

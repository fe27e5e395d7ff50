package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The store's tests are a conformance suite: every method of suite named TestXxx runs against
// each implementation, as TestSQLite/Xxx and TestPostgres/Xxx (restic's internal/backend/test
// does the same for its backends). A test that only makes sense for one implementation (file
// modes, pragmas, query plans, one server's migrations) is a plain TestXxx in a file of that
// implementation and says so.

// backend makes empty databases of one implementation and opens stores on them.
type backend struct {
	name     string
	parallel bool // tests may run at once (each has its own database)
	// newDB creates an empty database for one test, removed at its end, and returns where it
	// is: a file path or a connection URL.
	newDB func(t testing.TB) string
	open  func(ctx context.Context, loc string, opts Options) (testStore, error)
}

// testStore is a Store with the few hooks the suite needs to look under the interface; each
// implementation defines them in its own test file.
type testStore interface {
	Store
	setClock(now func() time.Time)
	// openColumn reads the open column of job id (the flag behind the index of due jobs).
	openColumn(ctx context.Context, id int64) (int, error)
	// beginRaw starts a transaction outside the Store API, on the write path; queries use ?.
	beginRaw(ctx context.Context) (rawTx, error)
	// rawExecRead runs a statement on the connections reads use; queries use ?.
	rawExecRead(ctx context.Context, query string, args ...any) error
	// checkSession fails t if a SaveDurable left a connection setting changed.
	checkSession(t testing.TB)
	// checkIntegrity fails t if the database is damaged (after a crash).
	checkIntegrity(t testing.TB)
}

type rawTx interface {
	exec(ctx context.Context, query string, args ...any) error
	commit() error
}

type suite struct{ b *backend }

// runSuite runs every TestXxx method of suite against b.
func runSuite(t *testing.T, b *backend) {
	v := reflect.ValueOf(suite{b})
	for i := range v.NumMethod() {
		name := v.Type().Method(i).Name
		if !strings.HasPrefix(name, "Test") {
			continue
		}
		test := v.Method(i).Interface().(func(*testing.T))
		t.Run(strings.TrimPrefix(name, "Test"), func(t *testing.T) {
			if b.parallel {
				t.Parallel()
			}
			test(t)
		})
	}
}

// t0 is a fixed "now" for tests; whole milliseconds so stored times compare equal.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newDB makes an empty database for this test.
func (su suite) newDB(t testing.TB) string { return su.b.newDB(t) }

// openAt opens a store on the database at loc, closed when the test ends.
func (su suite) openAt(t testing.TB, loc string, opts Options) testStore {
	t.Helper()
	s, err := su.b.open(testCtx(t), loc, opts)
	if err != nil {
		t.Fatalf("open %s store: %v", su.b.name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTest opens a store on a new database, its clock stopped at t0.
func (su suite) openTest(t testing.TB) testStore {
	t.Helper()
	s := su.openAt(t, su.newDB(t), Options{})
	s.setClock(func() time.Time { return t0 })
	return s
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "jobs.db") }

func newJob(folder, rel string) NewJob {
	return NewJob{Folder: folder, RelPath: rel, Size: 1000, ModTime: t0.Add(-time.Hour), FileID: "1:2", AgentID: "agent-1"}
}

func mustAdd(t testing.TB, s Store, n NewJob, now time.Time) Job {
	t.Helper()
	j, _, err := s.AddJob(testCtx(t), n, now)
	if err != nil {
		t.Fatalf("AddJob %s: %v", n.RelPath, err)
	}
	return j
}

// addN adds n jobs in folder "f" named v000.mov..., due at t0+i ms.
func addN(t testing.TB, s Store, n int) []Job {
	t.Helper()
	jobs := make([]Job, n)
	for i := range n {
		jobs[i] = mustAdd(t, s, newJob("f", fmt.Sprintf("v%03d.mov", i)), t0.Add(time.Duration(i)*time.Millisecond))
	}
	return jobs
}

func mustSave(t testing.TB, s Store, j *Job, msg string) {
	t.Helper()
	if err := s.Save(testCtx(t), j, msg); err != nil {
		t.Fatalf("Save job %d: %v", j.ID, err)
	}
}

func mustGet(t testing.TB, s Store, id int64) *Job {
	t.Helper()
	j, err := s.Get(testCtx(t), id)
	if err != nil {
		t.Fatalf("Get %d: %v", id, err)
	}
	return j
}

func ids(jobs []Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

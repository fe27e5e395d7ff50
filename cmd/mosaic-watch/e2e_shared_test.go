package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// Several hosts on one share: two daemons, each with its own state folder, one PostgreSQL
// database and one input folder (the share), against a fake that fails 5% of API calls and
// loses run-start answers.

const sharedLease = 3 * time.Second

// sharedE2E is the two daemons' setup: a is e's daemon, b runs from cfgB.
type sharedE2E struct {
	*e2e
	db    *pgx.Conn
	cfgB  string
	agent string
	srcs  map[string][]byte
}

func newSharedE2E(t *testing.T, seed int64) *sharedE2E {
	t.Helper()
	dbURL := testenv.PGDatabase(t)
	runFor := 400 * time.Millisecond
	e := newE2E(t, mosaictest.Options{
		Seed:   seed,
		Agents: []mosaictest.AgentSpec{{Name: "two outputs", Outputs: 2, RunDuration: &runFor}},
	}, []folderSpec{{name: "share"}}, fmt.Sprintf("database:\n  url: %q\n  lease: %s\nlimits:\n  uploads: 3\n  downloads: 3",
		dbURL, sharedLease))
	for _, r := range mosaictest.APIRoutes {
		e.fake.InjectFault(r, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Probability: 0.05})
	}
	e.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Probability: 0.2})
	body, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgB := e.path("config-b.yaml")
	if err := os.WriteFile(cfgB, []byte(strings.Replace(string(body), "state_dir: ./state", "state_dir: ./state-b", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &sharedE2E{e2e: e, db: conn, cfgB: cfgB, agent: e.fake.AgentIDs()[0], srcs: map[string][]byte{}}
}

func (s *sharedE2E) drop(n int) {
	for i := range n {
		rel := fmt.Sprintf("share/batch%d/clip %02d.mov", i%4, i)
		s.srcs[rel] = testenv.Clip(fmt.Sprintf("shared e2e %d", i))
		s.writeFile(rel, s.srcs[rel])
	}
}

// query runs one query on the shared database and returns its first column as strings.
func (s *sharedE2E) query(q string, args ...any) []string {
	s.t.Helper()
	rows, err := s.db.Query(context.Background(), q, args...)
	if err != nil && strings.Contains(err.Error(), "42P01") {
		return nil // the first daemon has not created the tables yet
	}
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, fmt.Sprint(v))
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// instanceOf is the instance id the daemon with this PID registered.
func (s *sharedE2E) instanceOf(pid int) string {
	s.t.Helper()
	var id []string
	testenv.WaitFor(s.t, 30*time.Second, fmt.Sprintf("PID %d to register", pid), func() bool {
		id = s.query("SELECT id FROM instances WHERE pid = $1", pid)
		return len(id) == 1
	})
	return id[0]
}

// held lists the open jobs owner holds now.
func (s *sharedE2E) held(owner string) []string {
	return s.query("SELECT id FROM jobs WHERE owner = $1 AND lease_until >= $2 AND open = 1 ORDER BY id",
		owner, time.Now().UnixMilli())
}

// waitAllDone waits until every dropped file is one job, done.
func (s *sharedE2E) waitAllDone() {
	s.t.Helper()
	testenv.WaitFor(s.t, 120*time.Second, "every file to be done", func() bool {
		bad := s.query("SELECT rel_path || ': ' || status || ' ' || last_error FROM jobs WHERE status NOT IN ('active', 'retrying', 'done')")
		if len(bad) > 0 {
			s.t.Fatalf("jobs ended badly: %v", bad)
		}
		return s.query("SELECT count(*) FROM jobs WHERE status = 'done'")[0] == fmt.Sprint(len(s.srcs))
	})
}

// checkExactlyOnce: one job and one run per file, every output right and written once, nothing
// else in the output folder.
func (s *sharedE2E) checkExactlyOnce() {
	s.t.Helper()
	if n := s.query("SELECT count(*) FROM jobs")[0]; n != fmt.Sprint(len(s.srcs)) {
		s.t.Errorf("%s jobs for %d files", n, len(s.srcs))
	}
	for rel, src := range s.srcs {
		if n := s.runs(src, s.agent); n != 1 {
			s.t.Errorf("%s: %d runs, want exactly 1", rel, n)
		}
		stem := strings.TrimSuffix(rel, ".mov")
		s.waitOutput(stem+"-1.mp4", s.agent, src, 0)
		s.waitOutput(stem+"-2.mp4", s.agent, src, 1)
	}
	if st := s.fake.Stats(); st.RunsCreated != len(s.srcs) {
		s.t.Errorf("runs created: %d, want %d", st.RunsCreated, len(s.srcs))
	}
	const written = `substring(message from '^output (.+?) written')`
	if twice := s.query(`SELECT job_id || ' ' || ` + written + ` FROM events WHERE ` + written + ` IS NOT NULL
		GROUP BY job_id, ` + written + ` HAVING count(*) > 1`); len(twice) > 0 {
		s.t.Errorf("outputs written twice: %v", twice)
	}
	if n := s.query("SELECT count(*) FROM events WHERE " + written + " IS NOT NULL")[0]; n != fmt.Sprint(2*len(s.srcs)) {
		s.t.Errorf("%s outputs written, want %d", n, 2*len(s.srcs))
	}
	var files []string
	filepath.WalkDir(s.path("out"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 2*len(s.srcs) {
		s.t.Errorf("%d files in the output folder, want %d (an output written twice, or a temporary file left)", len(files), 2*len(s.srcs))
	}
}

// (a) One daemon is killed with SIGKILL at a random moment while it holds jobs: the survivor
// takes them over within one lease (+5 s) and every file still runs exactly once.
func TestE2ESharedDatabaseSurvivesAKilledHost(t *testing.T) {
	s := newSharedE2E(t, 14)
	s.start()
	b := s.startAnother(s.cfgB)
	idA, idB := s.instanceOf(s.proc.Process.Pid), s.instanceOf(b.cmd.Process.Pid)
	s.drop(40)

	// A random moment while b works: after its first jobs, up to 2 s later.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	testenv.WaitFor(t, 60*time.Second, "the second daemon to hold jobs", func() bool { return len(s.held(idB)) > 0 })
	time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond) // the moment of the crash, not a wait for an outcome
	var orphans []string
	for len(orphans) == 0 {
		orphans = s.held(idB)
		if len(orphans) == 0 && s.query("SELECT count(*) FROM jobs WHERE open = 1")[0] == "0" {
			t.Fatal("every job finished before the second daemon could be killed holding one")
		}
		if len(orphans) == 0 {
			time.Sleep(10 * time.Millisecond) // between two looks at the database
		}
	}
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.done
	killed := time.Now()
	t.Logf("killed the second daemon holding jobs %v", orphans)

	// Taken over: each job it held is claimed by the survivor, or done, within lease + 5 s.
	testenv.WaitFor(t, sharedLease+5*time.Second, "the survivor to take over the killed daemon's jobs", func() bool {
		for _, id := range orphans {
			r := s.query("SELECT owner || ' ' || status FROM jobs WHERE id = $1", id)
			if len(r) != 1 || strings.HasPrefix(r[0], idB+" ") && !strings.HasSuffix(r[0], " done") {
				return false
			}
		}
		return true
	})
	t.Logf("taken over %s after the kill (lease %s)", time.Since(killed).Round(100*time.Millisecond), sharedLease)
	_ = idA
	s.waitAllDone()
	s.stop()
	s.checkExactlyOnce()
}

// (b) Both daemons alive: both start runs, and no file runs or writes twice.
func TestE2ESharedDatabaseSharesTheWork(t *testing.T) {
	s := newSharedE2E(t, 15)
	s.start()
	b := s.startAnother(s.cfgB)
	s.instanceOf(s.proc.Process.Pid)
	s.instanceOf(b.cmd.Process.Pid)
	s.drop(40)

	// status, through the binary, lists both instances with the jobs each holds.
	out, code := s.cli("status", "--config", s.cfgB, "--json")
	var ov jobview.Overview
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &ov) != nil || len(ov.Instances) != 2 {
		t.Fatalf("status --json = %d, instances %+v\n%s", code, ov.Instances, out)
	}
	pids := map[int]bool{ov.Instances[0].PID: true, ov.Instances[1].PID: true}
	if !pids[s.proc.Process.Pid] || !pids[b.cmd.Process.Pid] {
		t.Fatalf("status lists instances %+v, want PIDs %d and %d", ov.Instances, s.proc.Process.Pid, b.cmd.Process.Pid)
	}
	if out, code := s.cli("status", "--config", s.cfg); code != 0 || !strings.Contains(out, "Instances on postgres://") {
		t.Fatalf("status = %d\n%s", code, out)
	}
	s.waitAllDone()
	s.stop()
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-b.done
	s.checkExactlyOnce()
	const started = `msg="run started"`
	na, nb := strings.Count(s.logs.String(), started), strings.Count(b.logs.String(), started)
	t.Logf("runs started (or adopted): first daemon %d, second %d", na, nb)
	if na == 0 || nb == 0 {
		t.Errorf("the work was not shared: first daemon started %d runs, second %d", na, nb)
	}
	if na+nb != len(s.srcs) {
		t.Errorf("%d run starts logged for %d files", na+nb, len(s.srcs))
	}
}

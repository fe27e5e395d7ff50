package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashChildEnv = "MOSAIC_WATCH_STORE_CRASH_CHILD"

// crashChild writes jobs as fast as it can from two goroutines and reports each commit on stdout
// ("job ID ATTEMPTS") only after it returned, until the parent kills it.
func (su suite) crashChild(loc string) {
	ctx := context.Background()
	s, err := su.b.open(ctx, loc, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	report := func(id int64, attempts int) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, "job %d %d\n", id, attempts)
	}
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				j, _, err := s.AddJob(ctx, newJob(fmt.Sprintf("f%d", g), fmt.Sprintf("%d.mov", i)), time.Now())
				if err != nil {
					fmt.Println("add:", err)
					os.Exit(2)
				}
				report(j.ID, 0)
				for k := 1; k <= 3; k++ {
					j.Attempts = k
					j.Step = []Step{StepSettled, StepUploaded, StepStartingRun}[k-1]
					j.Outputs = []Output{{Index: k, Path: strings.Repeat("x", 200*k)}}
					save := s.Save
					if k == 3 {
						save = s.SaveDurable
					}
					if err := save(ctx, &j, "step"); err != nil {
						fmt.Println("save:", err)
						os.Exit(2)
					}
					report(j.ID, k)
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashSafety kills a writing process with SIGKILL and checks that every write it reported
// as committed survived, and that the database is intact.
func (su suite) TestCrashSafety(t *testing.T) {
	if loc := os.Getenv(crashChildEnv); loc != "" {
		su.crashChild(loc)
		return
	}
	loc := su.newDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// Run only this test of this backend in the child: ^TestSQLite$/^CrashSafety$.
	run := "^" + strings.ReplaceAll(t.Name(), "/", "$/^") + "$"
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+run)
	cmd.Env = append(os.Environ(), crashChildEnv+"="+loc)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	committed := map[int64]int{} // job id -> highest attempts reported
	lines := 0
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "job" {
			t.Logf("child: %s", sc.Text())
			continue
		}
		id, err1 := strconv.ParseInt(f[1], 10, 64)
		att, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("bad child line %q", sc.Text())
		}
		committed[id] = max(committed[id], att)
		lines++
		if lines == 600 && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL on unix
				t.Fatal(err)
			}
			killed = true
		}
	}
	waitErr := cmd.Wait()
	if !killed {
		t.Fatalf("child stopped by itself after %d lines: %v", lines, waitErr)
	}
	t.Logf("child killed after %d reported commits (%d jobs)", lines, len(committed))

	s := su.openAt(t, loc, Options{})
	for id, att := range committed {
		j, err := s.Get(testCtx(t), id)
		if err != nil {
			t.Fatalf("job %d reported committed, now: %v", id, err)
		}
		// The kill may land between a commit and its report, so the row can be one step ahead.
		if j.Attempts < att {
			t.Errorf("job %d: attempts %d, child had committed %d", id, j.Attempts, att)
		}
		ev, err := s.History(testCtx(t), id)
		if err != nil || len(ev) != j.Attempts+1 {
			t.Errorf("job %d: %d events for attempts %d (%v): row and event not in one transaction?", id, len(ev), j.Attempts, err)
		}
		if j.Attempts > 0 && (len(j.Outputs) != 1 || j.Outputs[0].Index != j.Attempts) {
			t.Errorf("job %d: outputs %+v do not match attempts %d", id, j.Outputs, j.Attempts)
		}
	}
	s.checkIntegrity(t)
}

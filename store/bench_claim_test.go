package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkClaimAdvance measures claim+advance cycles per second on each store, with one process
// and with two processes sharing the database (as two daemons would): each cycle claims one due
// job and saves it one step on (a row update and a history event), from claimWorkers goroutines
// per process. It prints cycles/s across all processes:
//
//	bash .ci/postgres.sh go test ./store/ -run '^$' -bench ClaimAdvance -benchtime 3000x
//
// (without a PostgreSQL server, MOSAIC_WATCH_TEST_PG unset, only the SQLite figures run).
func BenchmarkClaimAdvance(b *testing.B) {
	backends := []struct {
		name string
		new  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return tempDB(b) }},
		{"postgres", func(b *testing.B) string { return newPGSchema(b, pgServer(b)) }},
	}
	for _, be := range backends {
		for _, procs := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/procs=%d", be.name, procs), func(b *testing.B) {
				benchClaimAdvance(b, be.name, be.new(b), procs)
			})
		}
	}
}

// claimWorkers is how many goroutines claim in each process (a daemon's workers of one stage).
const claimWorkers = 4

// benchChildEnv makes the test binary a claim worker process: "backend|location".
const benchChildEnv = "MOSAIC_WATCH_STORE_BENCH_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(benchChildEnv); v != "" {
		os.Exit(claimAdvanceChild(v))
	}
	os.Exit(m.Run())
}

func openBackend(ctx context.Context, name, loc string) (Store, error) {
	if name == "postgres" {
		return OpenPostgres(ctx, loc, Options{})
	}
	return Open(ctx, loc, Options{})
}

// claimAdvance claims and advances jobs until none is due and returns how many it advanced.
func claimAdvance(ctx context.Context, s Store, owner string) (int, error) {
	var n int
	for {
		now := time.Now()
		got, err := s.Claim(ctx, owner, []Step{StepFound}, now, time.Minute, 1)
		if err != nil {
			return n, err
		}
		if len(got) == 0 {
			return n, nil
		}
		j := got[0]
		j.Step, j.Status = StepSettled, StatusDone
		if err := s.Save(ctx, &j, "advanced"); err != nil {
			return n, err
		}
		n++
	}
}

// claimAdvanceAll runs claimWorkers claimers on s and returns the jobs they advanced in total.
func claimAdvanceAll(ctx context.Context, s Store, proc string) (int, error) {
	var mu sync.Mutex
	var total int
	var first error
	var wg sync.WaitGroup
	for w := range claimWorkers {
		wg.Go(func() {
			n, err := claimAdvance(ctx, s, fmt.Sprintf("%s-w%d", proc, w))
			mu.Lock()
			defer mu.Unlock()
			total += n
			if first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	return total, first
}

// claimAdvanceChild is a second process: it opens the store, says "ready", waits for a line on
// stdin, works until nothing is due and prints "done N".
func claimAdvanceChild(spec string) int {
	name, loc, _ := strings.Cut(spec, "|")
	ctx := context.Background()
	s, err := openBackend(ctx, name, loc)
	if err != nil {
		fmt.Println("open:", err)
		return 2
	}
	defer s.Close()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Println("stdin:", err)
		return 2
	}
	n, err := claimAdvanceAll(ctx, s, fmt.Sprintf("child%d", os.Getpid()))
	if err != nil {
		fmt.Println("claim:", err)
		return 2
	}
	fmt.Println("done", n)
	return 0
}

type benchChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func (c *benchChild) line(b *testing.B) string {
	if !c.out.Scan() {
		b.Fatalf("child process ended: %v", c.out.Err())
	}
	return c.out.Text()
}

func benchClaimAdvance(b *testing.B, name, loc string, procs int) {
	ctx := context.Background()
	s, err := openBackend(ctx, name, loc)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// b.N due jobs, added in batches.
	for i := 0; i < b.N; i += 500 {
		batch := make([]NewJob, 0, 500)
		for k := i; k < min(i+500, b.N); k++ {
			batch = append(batch, newJob("f", fmt.Sprintf("v%07d.mov", k)))
		}
		if _, _, err := s.AddJobs(ctx, batch, t0); err != nil {
			b.Fatal(err)
		}
	}
	var children []*benchChild
	for range procs - 1 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), benchChildEnv+"="+name+"|"+loc)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		c := &benchChild{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
		defer cmd.Process.Kill()
		if l := c.line(b); l != "ready" {
			b.Fatalf("child: %s", l)
		}
		children = append(children, c)
	}

	b.ResetTimer()
	start := time.Now()
	for _, c := range children {
		io.WriteString(c.stdin, "go\n")
	}
	total, err := claimAdvanceAll(ctx, s, "parent")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range children {
		l := c.line(b)
		n, err := strconv.Atoi(strings.TrimPrefix(l, "done "))
		if err != nil {
			b.Fatalf("child: %s", l)
		}
		total += n
		c.cmd.Wait()
	}
	elapsed := time.Since(start)
	b.StopTimer()

	// Every job advanced exactly once, by one process or the other.
	if total != b.N {
		b.Fatalf("%d cycles for %d jobs", total, b.N)
	}
	if c, err := s.Counts(ctx); err != nil || c[StatusDone] != b.N {
		b.Fatalf("Counts = %v, %v; want %d done", c, err, b.N)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "cycles/s")
}

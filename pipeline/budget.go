package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// BudgetWindow is the sliding window of the daily run limits.
const BudgetWindow = 24 * time.Hour

// RunBudget is the use of one daily run limit.
type RunBudget struct {
	Limit int       // 0 = no limit
	Used  int       // run starts in the last 24 hours
	Next  time.Time // when a run may start again; zero unless the limit is reached
}

// Reached reports whether no run may start now.
func (b RunBudget) Reached() bool { return b.Limit > 0 && b.Used >= b.Limit }

// DailyBudgets computes the global limit's use and each limited folder's (by input) from the
// run starts of the last 24 hours (oldest first), as of now. The daemon and `status` share it.
func DailyBudgets(starts []store.RunStart, global int, perFolder map[string]int, now time.Time) (
	RunBudget, map[string]RunBudget) {
	since := now.Add(-BudgetWindow)
	var all []time.Time
	byFolder := map[string][]time.Time{}
	for _, s := range starts {
		if s.At.After(since) {
			all = append(all, s.At)
			byFolder[s.Folder] = append(byFolder[s.Folder], s.At)
		}
	}
	folders := make(map[string]RunBudget, len(perFolder))
	for input, limit := range perFolder {
		if limit > 0 {
			folders[input] = budgetOf(byFolder[input], limit)
		}
	}
	return budgetOf(all, global), folders
}

// budgetOf is the use of limit by starts (oldest first, all inside the window).
func budgetOf(starts []time.Time, limit int) RunBudget {
	b := RunBudget{Limit: limit, Used: len(starts)}
	if b.Reached() {
		// Used-Limit+1 starts must leave the window before one more fits.
		b.Next = starts[b.Used-b.Limit].Add(BudgetWindow)
	}
	return b
}

// runBudget keeps the run starts of the last 24 hours to enforce the daily limits.
type runBudget struct {
	mu        sync.Mutex
	global    int
	perFolder map[string]int
	starts    []store.RunStart // oldest first
}

func newRunBudget(global int, folders map[string]*Folder) *runBudget {
	b := &runBudget{}
	b.setLimits(global, folders, true)
	return b
}

// setLimits sets the global limit (when setGlobal) and the folders' limits (when folders is
// not nil).
func (b *runBudget) setLimits(global int, folders map[string]*Folder, setGlobal bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if setGlobal {
		b.global = global
	}
	if folders != nil {
		b.perFolder = make(map[string]int, len(folders))
		for input, f := range folders {
			b.perFolder[input] = f.MaxRunsPerDay
		}
	}
}

// limited reports whether any daily limit is set.
func (b *runBudget) limited() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.global > 0 {
		return true
	}
	for _, n := range b.perFolder {
		if n > 0 {
			return true
		}
	}
	return false
}

func (b *runBudget) load(starts []store.RunStart) {
	b.mu.Lock()
	b.starts = starts
	b.mu.Unlock()
}

// state returns the limits' use now.
func (b *runBudget) state(now time.Time) (RunBudget, map[string]RunBudget) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(now)
	return DailyBudgets(b.starts, b.global, b.perFolder, now)
}

func (b *runBudget) prune(now time.Time) {
	since := now.Add(-BudgetWindow)
	i := 0
	for i < len(b.starts) && !b.starts[i].At.After(since) {
		i++
	}
	b.starts = b.starts[i:]
}

// take records a run start of folder at now, or returns why none may start (a WaitDailyLimit
// reason) and records nothing.
func (b *runBudget) take(folder string, now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(now)
	global, folders := DailyBudgets(b.starts, b.global, b.perFolder, now)
	if global.Reached() {
		return fmt.Sprintf("%s: %d runs started in the last 24 hours (limits.max_runs_per_day: %d); "+
			"runs start again from %s", WaitDailyLimit, global.Used, global.Limit, global.Next.Format(time.RFC3339))
	}
	if fb := folders[folder]; fb.Reached() {
		return fmt.Sprintf("%s: %d runs of this folder started in the last 24 hours (its "+
			"limits.max_runs_per_day: %d); runs start again from %s", WaitDailyLimit, fb.Used, fb.Limit,
			fb.Next.Format(time.RFC3339))
	}
	b.starts = append(b.starts, store.RunStart{Folder: folder, At: now})
	return ""
}

// release forgets the start of folder at at: it is known that no run was created.
func (b *runBudget) release(folder string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range b.starts {
		if s.Folder == folder && s.At.Truncate(time.Millisecond).Equal(at.Truncate(time.Millisecond)) {
			b.starts = append(b.starts[:i], b.starts[i+1:]...)
			return
		}
	}
}

// RunBudgets reports the daily run limits' use: the global one and each limited folder's (by
// input), for status displays and metrics.
func (p *Pipeline) RunBudgets() (RunBudget, map[string]RunBudget) { return p.budget.state(p.now()) }

// RunsByFolder adds to counts the run starts of the last 24 hours by folder input (limited or
// not), for metrics.
func (p *Pipeline) RunsByFolder(counts map[string]int) {
	b := p.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(p.now())
	for _, s := range b.starts {
		counts[s.Folder]++
	}
}

// loadRunStarts seeds the limits with the run starts the store knows of.
func (p *Pipeline) loadRunStarts(ctx context.Context) error {
	starts, err := p.st.RunsStartedSince(ctx, p.now().Add(-BudgetWindow))
	if err != nil {
		return fmt.Errorf("count recent run starts: %w", err)
	}
	p.budget.load(starts)
	return nil
}

// syncBudget, for a store shared with other daemons and a daily limit set, takes the store's
// budget lock and reloads the run starts every host recorded, so that the limit holds across
// hosts: the caller records its start in the store before it unlocks. Otherwise it does nothing.
func (p *Pipeline) syncBudget(ctx context.Context) (unlock func(), err error) {
	if !p.opts.Shared || !p.budget.limited() {
		return func() {}, nil
	}
	unlock, err = p.lockAgent(ctx, "budget", "*")
	if err != nil {
		return nil, err
	}
	if err := p.loadRunStarts(ctx); err != nil {
		unlock()
		return nil, transient("count the run starts of every host", err)
	}
	return unlock, nil
}

func (p *Pipeline) wakeBudget() {
	select {
	case p.budgetWake <- struct{}{}:
	default:
	}
}

// budgetMinGap spaces the passes over the jobs waiting for the daily limit: many jobs reaching
// the limit at once cost one pass, not one each.
const budgetMinGap = time.Second

// budgetLoop resumes jobs waiting for the daily run limit as the window frees, as many as fit.
func (p *Pipeline) budgetLoop(ctx context.Context) {
	timer := time.NewTimer(0) // a first pass at start: the window may have freed meanwhile
	defer timer.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.budgetWake:
			timer.Reset(max(0, time.Until(last.Add(budgetMinGap))))
			continue
		case <-timer.C:
		}
		last = time.Now()
		next, err := p.resumeWithinBudget(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Error("resume jobs waiting for the daily run limit", "err", err)
			next = p.now().Add(time.Minute)
		}
		if !next.IsZero() {
			timer.Reset(max(budgetMinGap, next.Sub(p.now())))
		}
	}
}

// resumeWithinBudget resumes the waiting jobs that fit the limits now, oldest first, and
// returns when to look again (zero: nothing left waiting).
func (p *Pipeline) resumeWithinBudget(ctx context.Context) (time.Time, error) {
	now := p.now()
	global, folders := p.budget.state(now)
	if global.Reached() {
		return global.Next, nil // nothing can start: not even worth listing
	}
	jobs, err := waitingJobs(ctx, p.st, "", WaitDailyLimit)
	if err != nil || len(jobs) == 0 {
		return time.Time{}, err
	}
	var next time.Time
	later := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	resumed, byFolder := 0, map[string]int{}
	for i := range jobs {
		j := &jobs[i]
		fb, limited := folders[j.Folder]
		switch {
		case global.Limit > 0 && global.Used+resumed >= global.Limit:
			if global.Next.IsZero() { // filled by what this pass resumed: look once they started
				later(now.Add(time.Minute))
			}
			later(global.Next)
			continue
		case limited && fb.Used+byFolder[j.Folder] >= fb.Limit:
			if fb.Next.IsZero() {
				later(now.Add(time.Minute))
			}
			later(fb.Next)
			continue
		}
		ok, err := resumeJob(ctx, p.st, j, now, "the daily run limit has room again")
		if err != nil {
			return now.Add(time.Minute), err
		}
		if ok {
			resumed++
			byFolder[j.Folder]++
		}
	}
	if resumed > 0 {
		p.log.Info("daily run limit has room again; jobs resume", "jobs", resumed)
		p.wake(store.StepFinalized)
	}
	return next, nil
}

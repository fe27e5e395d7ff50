package pipeline

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// A stage is a pool of workers serving some steps. It claims due jobs at those steps from the
// store, up to its free slots, and runs each job through the stage's steps; when a job moves to
// a step of another stage its lease is dropped in the same commit and that stage is woken.
type stage struct {
	p        *Pipeline
	name     string
	steps    []store.Step
	slots    int
	capacity func() int // optional extra bound (active runs); nil = none
	step     func(ctx context.Context, j *store.Job) error
	wakeCh   chan struct{}

	mu       sync.Mutex
	inflight map[int64]struct{}
	parked   map[int64]store.Job // waiting for a degraded folder, still leased to us
}

func (p *Pipeline) buildStages() {
	l := p.opts.Limits
	p.stages = []*stage{
		{name: "hash", steps: []store.Step{store.StepFound}, slots: l.Hashes, step: p.stepHash},
		{name: "upload", steps: []store.Step{store.StepSettled, store.StepUploaded}, slots: l.Uploads, step: p.stepUpload},
		{name: "start", steps: []store.Step{store.StepFinalized, store.StepStartingRun}, slots: l.Starts, step: p.stepStartRun, capacity: p.runCapacity},
		{name: "output", steps: []store.Step{store.StepRunFinished, store.StepOutputsWritten, store.StepSourceHandled}, slots: l.Downloads, step: p.stepOutputs},
	}
	p.byStep = make(map[store.Step]*stage)
	for _, s := range p.stages {
		s.p = p
		s.wakeCh = make(chan struct{}, 1)
		s.inflight = make(map[int64]struct{})
		s.parked = make(map[int64]store.Job)
		for _, st := range s.steps {
			p.byStep[st] = s
		}
	}
}

// wake tells the stage serving step that work may be due.
func (p *Pipeline) wake(step store.Step) {
	if step == store.StepRunStarted {
		p.WakePoller()
		return
	}
	if s, ok := p.byStep[step]; ok {
		select {
		case s.wakeCh <- struct{}{}:
		default:
		}
	}
}

func (s *stage) owns(step store.Step) bool { return slices.Contains(s.steps, step) }

func (s *stage) free() int {
	s.mu.Lock()
	n := s.slots - len(s.inflight)
	s.mu.Unlock()
	if s.capacity != nil {
		n = min(n, s.capacity())
	}
	return n
}

func (s *stage) inflightIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.inflight))
	for id := range s.inflight {
		ids = append(ids, id)
	}
	return ids
}

func (s *stage) loop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan struct{}, s.slots)
	tick := time.NewTicker(s.p.opts.ClaimEvery)
	defer tick.Stop()
	for {
		if n := s.free(); n > 0 && s.p.gate.open() {
			jobs := s.unpark(n)
			if n -= len(jobs); n > 0 {
				claimed, err := s.p.st.Claim(ctx, s.p.opts.Owner, s.steps, s.p.now(), s.p.opts.Lease, n)
				if err != nil && ctx.Err() == nil {
					s.p.log.Error("claim jobs", "stage", s.name, "err", err)
				}
				jobs = append(jobs, claimed...)
			}
			for _, j := range jobs {
				s.mu.Lock()
				_, busy := s.inflight[j.ID]
				s.inflight[j.ID] = struct{}{}
				delete(s.parked, j.ID) // claimed again after its lease lapsed: the claim is newer
				s.mu.Unlock()
				if busy {
					continue // its lease lapsed (a clock jump, a stalled heartbeat) while we work on it
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.work(ctx, j)
					s.mu.Lock()
					delete(s.inflight, j.ID)
					s.mu.Unlock()
					done <- struct{}{}
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wakeCh:
		case <-done:
		case <-tick.C:
		}
	}
}

// work runs one claimed job through this stage's steps.
func (s *stage) work(ctx context.Context, j store.Job) {
	defer s.p.clearProgress(j.ID)
	for j.Status.Open() && s.owns(j.Step) {
		before := j.Step
		err := s.step(ctx, &j)
		if why, ok := waitingFor(err); ok && ctx.Err() == nil {
			s.park(ctx, j, why)
			return
		}
		if err != nil {
			s.p.fail(ctx, &j, err)
			return
		}
		if j.Step == before {
			// A step that made no progress has put the job back (deferred) itself.
			return
		}
	}
}

// waitNote starts the note of a job that waits for its folder.
const waitNote = "waiting for the folder to come back: "

// park sets a job aside until its folder is back. It keeps its lease (the heartbeat renews
// it) and frees its worker slot; the stage takes it up again once the folder's health check
// passes. One history line records the wait, however long it lasts: nothing is written while
// it waits.
func (s *stage) park(ctx context.Context, j store.Job, why string) {
	if note := waitNote + why; j.Note != note {
		j.Note = note
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		err := s.p.st.Save(wctx, &j, note)
		cancel()
		if errors.Is(err, store.ErrLost) {
			return // another worker has it now
		}
		if err != nil {
			s.p.log.Warn("record that a job waits for its folder", "job", j.ID, "err", err)
		}
	}
	s.mu.Lock()
	s.parked[j.ID] = j
	s.mu.Unlock()
}

// unpark takes up to n parked jobs whose folder is healthy again.
func (s *stage) unpark(n int) []store.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Job
	for id, j := range s.parked {
		if len(out) == n {
			break
		}
		if s.p.health.reason(j.Folder) != "" {
			continue
		}
		delete(s.parked, id)
		if strings.HasPrefix(j.Note, waitNote) {
			j.Note = ""
		}
		j.LeaseUntil = s.p.now().Add(s.p.opts.Lease) // as renewed by the heartbeat meanwhile
		out = append(out, j)
	}
	return out
}

// heldIDs lists the jobs this stage holds leases for: in flight and parked.
func (s *stage) heldIDs() []int64 {
	ids := s.inflightIDs()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.parked {
		ids = append(ids, id)
	}
	return ids
}

// commit saves a job after a step. When the job leaves the current stage (or closes) its lease
// is dropped in the same write, and the next stage is woken.
func (p *Pipeline) commit(ctx context.Context, j *store.Job, msg string) error {
	s := p.byStep[j.Step]
	leaving := !j.Status.Open() || s == nil || !s.ownsJob(j.ID)
	if leaving {
		j.LeaseUntil = time.Time{}
	}
	j.UpdatedAt = p.now()
	// A step whose work is done is recorded even when a shutdown has begun: that is the safe
	// point the shutdown waits for.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := p.st.Save(wctx, j, msg); err != nil {
		return err
	}
	if leaving {
		p.pollMu.Lock()
		delete(p.polling, j.ID) // handed back by this write; the end of the poll round must not touch it
		p.pollMu.Unlock()
	}
	if leaving && j.Status.Open() {
		p.wake(j.Step)
	}
	return nil
}

// commitDurable is commit with the write on stable storage before it returns.
func (p *Pipeline) commitDurable(ctx context.Context, j *store.Job, msg string) error {
	j.UpdatedAt = p.now()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	return p.st.SaveDurable(wctx, j, msg)
}

// commitTimeout bounds a commit that outlives its step's context.
const commitTimeout = 5 * time.Second

// ownsJob reports whether this stage currently works on job id (so the job stays leased).
func (s *stage) ownsJob(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inflight[id]
	return ok
}

func (p *Pipeline) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := p.polledIDs()
		for _, s := range p.stages {
			ids = append(ids, s.heldIDs()...)
		}
		if len(ids) == 0 {
			continue
		}
		if err := p.st.Renew(ctx, p.opts.Owner, ids, p.now().Add(p.opts.Lease)); err != nil && !errors.Is(err, context.Canceled) {
			p.log.Error("renew job leases", "jobs", len(ids), "err", err)
		}
	}
}

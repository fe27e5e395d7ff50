package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func (su suite) TestAddJobIsIdempotent(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	n := newJob("/in", "a/b.mov")
	j, created, err := s.AddJob(ctx, n, t0)
	if err != nil || !created {
		t.Fatalf("first AddJob = created %v, %v", created, err)
	}
	if j.ID == 0 || j.Step != StepFound || j.Status != StatusActive || !j.NextAttemptAt.Equal(t0) ||
		!j.CreatedAt.Equal(t0) || j.FileID != "1:2" || j.AgentID != "agent-1" || j.Owner != "" {
		t.Fatalf("new job = %+v", j)
	}
	again, created, err := s.AddJob(ctx, n, t0.Add(time.Hour))
	if err != nil || created {
		t.Fatalf("second AddJob = created %v, %v", created, err)
	}
	if !reflect.DeepEqual(again, j) {
		t.Fatalf("second AddJob returned\n%+v\nwant\n%+v", again, j)
	}
	ev, err := s.History(ctx, j.ID)
	if err != nil || len(ev) != 1 || ev[0].Step != StepFound || ev[0].Status != StatusActive || ev[0].Message != "found" || !ev[0].At.Equal(t0) {
		t.Fatalf("history = %+v, %v; want one 'found' event", ev, err)
	}
	// A new version of the file (other size or mtime) is a new job.
	n2 := n
	n2.ModTime = n.ModTime.Add(time.Nanosecond)
	j2, created, err := s.AddJob(ctx, n2, t0)
	if err != nil || !created || j2.ID == j.ID {
		t.Fatalf("AddJob of a new version = %d created %v, %v", j2.ID, created, err)
	}
	if _, _, err := s.AddJob(ctx, NewJob{Folder: "/in"}, t0); err == nil {
		t.Fatal("AddJob without rel path accepted")
	}
}

func (su suite) TestTimesRoundTrip(t *testing.T) {
	s := su.openTest(t)
	mtime := time.Date(2024, 7, 9, 10, 11, 12, 123456789, time.FixedZone("CEST", 2*3600))
	n := newJob("f", "ns.mov")
	n.ModTime = mtime
	j := mustAdd(t, s, n, t0)
	got := mustGet(t, s, j.ID)
	if !got.ModTime.Equal(mtime) || got.ModTime.Nanosecond() != 123456789 {
		t.Fatalf("ModTime = %v, want %v", got.ModTime, mtime)
	}
	if got.ModTime.Location() != time.UTC || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("times not in UTC: %v %v", got.ModTime.Location(), got.CreatedAt.Location())
	}
	if !got.RunStartAt.IsZero() || !got.LeaseUntil.IsZero() {
		t.Fatalf("unset times not zero: %v %v", got.RunStartAt, got.LeaseUntil)
	}
	// Found by identity with the exact nanoseconds.
	if _, created, err := s.AddJob(testCtx(t), n, t0); err != nil || created {
		t.Fatalf("AddJob same ns identity: created=%v %v", created, err)
	}
	// Zero mtime round-trips as zero.
	z := mustAdd(t, s, NewJob{Folder: "f", RelPath: "zero.mov"}, t0)
	if got := mustGet(t, s, z.ID); !got.ModTime.IsZero() {
		t.Fatalf("zero ModTime read back as %v", got.ModTime)
	}
}

func fullJob(j Job) Job {
	j.AgentID = "agent-2"
	j.ContentHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	j.Step = StepRunStarted
	j.Status = StatusRetrying
	j.Attempts = 3
	j.NextAttemptAt = t0.Add(90 * time.Second)
	j.LastError = "GET run: 503"
	j.Note = "note ünïcode"
	j.UploadAPI = "uploads"
	j.VideoID = "vid-1"
	j.RunID = "run-1"
	j.RunStartAt = t0.Add(-time.Minute)
	j.RunWindowFrom = t0.Add(-3*time.Minute - 1500*time.Millisecond)
	j.RunWindowTo = t0.Add(-3*time.Minute + 700*time.Millisecond)
	j.RunParams = "sha256:0f1e"
	j.CopyOf = 41
	j.RunStatus = "running"
	j.RunMessage = "2/3 nodes"
	j.Outputs = []Output{
		{Index: 0, RenderID: "r0", URL: "https://s/x?sig=secret", Path: "a/b.out.mp4", Size: 1 << 40, Written: true},
		{Index: 1, Path: "a/b.out-2.mp4"},
	}
	j.LeaseUntil = t0.Add(time.Minute)
	return j
}

func (su suite) TestSaveRoundTripsEveryField(t *testing.T) {
	s := su.openTest(t)
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	want := fullJob(j)
	want.Owner = "w1"
	mustSave(t, s, &want, "run started")
	if !want.UpdatedAt.Equal(t0) {
		t.Fatalf("Save did not set UpdatedAt: %v", want.UpdatedAt)
	}
	got := mustGet(t, s, j.ID)
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("Get after Save:\n got %+v\nwant %+v", *got, want)
	}
	ev, err := s.History(testCtx(t), j.ID)
	if err != nil || len(ev) != 2 {
		t.Fatalf("history = %+v, %v", ev, err)
	}
	if e := ev[1]; e.Step != StepRunStarted || e.Status != StatusRetrying || e.Message != "run started" || e.JobID != j.ID {
		t.Fatalf("save event = %+v", e)
	}
	// Identity and CreatedAt are not writable through Save.
	changed := *got
	changed.Folder, changed.RelPath, changed.Size, changed.FileID = "x", "y", 1, "9:9"
	changed.ModTime, changed.CreatedAt = t0, t0.Add(time.Hour)
	changed.Outputs = nil
	mustSave(t, s, &changed, "")
	got = mustGet(t, s, j.ID)
	if got.Folder != "f" || got.RelPath != "a.mov" || got.Size != 1000 || got.FileID != "1:2" ||
		!got.ModTime.Equal(j.ModTime) || !got.CreatedAt.Equal(j.CreatedAt) {
		t.Fatalf("identity changed by Save: %+v", got)
	}
	if got.Outputs != nil {
		t.Fatalf("nil outputs read back as %#v", got.Outputs)
	}
}

func (su suite) TestSaveMaintainsOpenColumn(t *testing.T) {
	s := su.openTest(t)
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	openOf := func() int {
		o, err := s.openColumn(testCtx(t), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, tc := range []struct {
		st   Status
		open int
	}{{StatusActive, 1}, {StatusRetrying, 1}, {StatusAttention, 0}, {StatusFailed, 0}, {StatusSkipped, 0}, {StatusDone, 0}, {StatusActive, 1}} {
		j.Status = tc.st
		mustSave(t, s, &j, string(tc.st))
		if o := openOf(); o != tc.open {
			t.Fatalf("status %s: open = %d, want %d", tc.st, o, tc.open)
		}
		if tc.st.Open() != (tc.open == 1) {
			t.Fatalf("Status(%s).Open() = %v", tc.st, tc.st.Open())
		}
	}
}

func (su suite) TestSaveErrors(t *testing.T) {
	s := su.openTest(t)
	ghost := Job{ID: 4242, Step: StepFound, Status: StatusActive}
	if err := s.Save(testCtx(t), &ghost, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Save of a missing job = %v, want ErrNotFound", err)
	}
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Save(ctx, &j, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Save with a cancelled ctx = %v", err)
	}
	if ev, _ := s.History(testCtx(t), j.ID); len(ev) != 1 {
		t.Fatalf("failed save left %d events", len(ev))
	}
}

func (su suite) TestSaveDurable(t *testing.T) {
	s := su.openTest(t)
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	want := fullJob(j)
	want.Step, want.Status = StepStartingRun, StatusActive
	if err := s.SaveDurable(testCtx(t), &want, "starting run"); err != nil {
		t.Fatalf("SaveDurable: %v", err)
	}
	if got := mustGet(t, s, j.ID); !reflect.DeepEqual(*got, want) {
		t.Fatalf("Get after SaveDurable:\n got %+v\nwant %+v", *got, want)
	}
	if ev, _ := s.History(testCtx(t), j.ID); len(ev) != 2 || ev[1].Message != "starting run" {
		t.Fatalf("history = %+v", ev)
	}
	s.checkSession(t) // a durable commit's setting does not outlive it
	// Restored on failure too: lost ownership and a cancelled context.
	if _, err := s.Claim(testCtx(t), "other", nil, t0.Add(time.Hour), time.Hour, 10); err != nil {
		t.Fatal(err)
	}
	mine := *mustGet(t, s, j.ID)
	mine.Owner = "me"
	if err := s.SaveDurable(testCtx(t), &mine, ""); !errors.Is(err, ErrLost) {
		t.Fatalf("SaveDurable by non-owner = %v, want ErrLost", err)
	}
	s.checkSession(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.SaveDurable(ctx, &want, ""); err == nil {
		t.Fatal("SaveDurable with cancelled ctx succeeded")
	}
	s.checkSession(t)
}

func (su suite) TestJobsAt(t *testing.T) {
	s := su.openTest(t)
	n := newJob("f", "a.mov")
	j1 := mustAdd(t, s, n, t0)
	n.Size = 2000
	j2 := mustAdd(t, s, n, t0)
	mustAdd(t, s, newJob("f", "b.mov"), t0)
	mustAdd(t, s, newJob("g", "a.mov"), t0)
	got, err := s.JobsAt(testCtx(t), "f", "a.mov")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids(got), []int64{j2.ID, j1.ID}) {
		t.Fatalf("JobsAt = %v, want [%d %d]", ids(got), j2.ID, j1.ID)
	}
	if got, err := s.JobsAt(testCtx(t), "f", "none.mov"); err != nil || len(got) != 0 {
		t.Fatalf("JobsAt(none) = %v, %v", got, err)
	}
}

func (su suite) TestFindByContent(t *testing.T) {
	s := su.openTest(t)
	const h = "abc123"
	setup := func(rel, folder string, st Status, hash string) Job {
		j := mustAdd(t, s, newJob(folder, rel), t0)
		j.ContentHash, j.Status = hash, st
		mustSave(t, s, &j, "")
		return j
	}
	failed := setup("failed.mov", "f", StatusFailed, h)
	setup("skipped.mov", "f", StatusSkipped, h)
	setup("attn.mov", "f", StatusAttention, h)
	setup("other-folder.mov", "g", StatusDone, h)
	setup("other-hash.mov", "f", StatusDone, "zzz")
	ctx := testCtx(t)

	if got, err := s.FindByContent(ctx, "f", h, 0); err != nil || got != nil {
		t.Fatalf("only failed/skipped/attention: got %v, %v; want nil", got, err)
	}
	done := setup("done.mov", "f", StatusDone, h)
	retrying := setup("retrying.mov", "f", StatusRetrying, h)
	if got, err := s.FindByContent(ctx, "f", h, failed.ID); err != nil || got == nil || got.ID != retrying.ID {
		t.Fatalf("FindByContent = %+v, %v; want newest (retrying %d)", got, err, retrying.ID)
	}
	if got, err := s.FindByContent(ctx, "f", h, retrying.ID); err != nil || got == nil || got.ID != done.ID {
		t.Fatalf("FindByContent except newest = %+v, %v; want done %d", got, err, done.ID)
	}
	active := setup("active.mov", "f", StatusActive, h)
	if got, _ := s.FindByContent(ctx, "f", h, 0); got == nil || got.ID != active.ID {
		t.Fatalf("FindByContent = %+v; want active %d", got, active.ID)
	}
	waiting := setup("waiting.mov", "f", StatusWaiting, h) // will run once its hold is lifted
	if got, _ := s.FindByContent(ctx, "f", h, 0); got == nil || got.ID != waiting.ID {
		t.Fatalf("FindByContent = %+v; want waiting %d", got, waiting.ID)
	}
	// Unsettled jobs all have the empty hash; they are never duplicates of each other.
	mustAdd(t, s, newJob("f", "unsettled.mov"), t0)
	if got, err := s.FindByContent(ctx, "f", "", 0); err != nil || got != nil {
		t.Fatalf("FindByContent(\"\") = %v, %v", got, err)
	}
}

func (su suite) TestRunIDTaken(t *testing.T) {
	s := su.openTest(t)
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	ctx := testCtx(t)
	if taken, err := s.RunIDTaken(ctx, "run-x"); err != nil || taken {
		t.Fatalf("RunIDTaken before = %v, %v", taken, err)
	}
	j.RunID = "run-x"
	mustSave(t, s, &j, "")
	if taken, err := s.RunIDTaken(ctx, "run-x"); err != nil || !taken {
		t.Fatalf("RunIDTaken after = %v, %v", taken, err)
	}
	if taken, err := s.RunIDTaken(ctx, ""); err != nil || taken {
		t.Fatalf("RunIDTaken(\"\") = %v, %v", taken, err)
	}
}

func (su suite) TestList(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	clock := t0
	s.setClock(func() time.Time { return clock })
	put := func(folder, rel string, st Status) Job {
		j := mustAdd(t, s, newJob(folder, rel), t0)
		clock = clock.Add(time.Second) // distinct UpdatedAt, later = newer
		j.Status = st
		mustSave(t, s, &j, "")
		return j
	}
	abc := put("f", "a/b/c.mov", StatusDone)
	abc2 := put("f", "a/b/deep/c2.mov", StatusActive)
	abFile := put("f", "a/b", StatusFailed)
	abcSibling := put("f", "a/bc.mov", StatusDone)
	ab0 := put("f", "a/b0.mov", StatusDone)
	upper := put("f", "A/B/c.mov", StatusDone)
	other := put("g", "a/b/c.mov", StatusRetrying)

	tests := []struct {
		name string
		f    Filter
		want []Job
	}{
		{"all newest first", Filter{}, []Job{other, upper, ab0, abcSibling, abFile, abc2, abc}},
		{"folder", Filter{Folder: "g"}, []Job{other}},
		{"status any of", Filter{Status: []Status{StatusFailed, StatusRetrying}}, []Job{other, abFile}},
		{"path prefix", Filter{Folder: "f", Path: "a/b"}, []Job{abFile, abc2, abc}},
		{"path prefix trailing slash", Filter{Folder: "f", Path: "a/b/"}, []Job{abFile, abc2, abc}},
		{"exact path", Filter{Path: "a/bc.mov"}, []Job{abcSibling}},
		{"path is case-sensitive", Filter{Path: "A/B"}, []Job{upper}},
		{"path and status", Filter{Path: "a/b", Status: []Status{StatusDone, StatusRetrying}}, []Job{other, abc}},
		{"limit offset", Filter{Limit: 2, Offset: 1}, []Job{upper, ab0}},
	}
	for _, tt := range tests {
		got, err := s.List(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !reflect.DeepEqual(ids(got), ids(tt.want)) {
			t.Errorf("%s: List = %v, want %v", tt.name, ids(got), ids(tt.want))
		}
	}
	for i := range 120 {
		mustAdd(t, s, newJob("h", fmt.Sprintf("%d.mov", i)), t0)
	}
	if got, _ := s.List(ctx, Filter{Folder: "h"}); len(got) != 100 {
		t.Fatalf("default limit: %d jobs, want 100", len(got))
	}
}

func (su suite) TestHistoryOrder(t *testing.T) {
	s := su.openTest(t)
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	steps := []Step{StepSettled, StepUploaded, StepFinalized, StepStartingRun, StepRunStarted}
	for _, st := range steps {
		j.Step = st
		mustSave(t, s, &j, "to "+string(st)) // same s.now for all: order must come from insertion
	}
	ev, err := s.History(testCtx(t), j.ID)
	if err != nil || len(ev) != len(steps)+1 {
		t.Fatalf("History = %d events, %v", len(ev), err)
	}
	for i, st := range steps {
		if ev[i+1].Step != st || ev[i+1].Message != "to "+string(st) {
			t.Fatalf("event %d = %+v, want step %s", i+1, ev[i+1], st)
		}
	}
	if ev, err := s.History(testCtx(t), 999); err != nil || len(ev) != 0 {
		t.Fatalf("History(missing) = %v, %v", ev, err)
	}
}

func (su suite) TestCounts(t *testing.T) {
	s := su.openTest(t)
	put := func(folder string, i int, st Status) {
		j := mustAdd(t, s, newJob(folder, fmt.Sprintf("%d.mov", i)), t0)
		j.Status = st
		mustSave(t, s, &j, "")
	}
	put("f", 1, StatusDone)
	put("f", 2, StatusDone)
	put("f", 3, StatusFailed)
	put("g", 1, StatusActive)
	put("g", 2, StatusDone)
	c, err := s.Counts(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[Status]int{StatusDone: 3, StatusFailed: 1, StatusActive: 1}; !reflect.DeepEqual(c, want) {
		t.Fatalf("Counts = %v, want %v", c, want)
	}
	cf, err := s.CountsByFolder(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[Status]int{"f": {StatusDone: 2, StatusFailed: 1}, "g": {StatusActive: 1, StatusDone: 1}}
	if !reflect.DeepEqual(cf, want) {
		t.Fatalf("CountsByFolder = %v, want %v", cf, want)
	}
}

func (su suite) TestOpenAtStep(t *testing.T) {
	s := su.openTest(t)
	jobs := addN(t, s, 5)
	set := func(j Job, st Step, status Status, next time.Time) {
		j.Step, j.Status, j.NextAttemptAt = st, status, next
		mustSave(t, s, &j, "")
	}
	set(jobs[0], StepRunStarted, StatusActive, t0.Add(3*time.Second))
	set(jobs[1], StepRunStarted, StatusRetrying, t0.Add(1*time.Second))
	set(jobs[2], StepRunStarted, StatusAttention, t0) // not open
	set(jobs[3], StepUploaded, StatusActive, t0)      // other step
	set(jobs[4], StepRunStarted, StatusActive, t0.Add(2*time.Second))
	got, err := s.OpenAtStep(testCtx(t), StepRunStarted)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{jobs[1].ID, jobs[4].ID, jobs[0].ID}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("OpenAtStep = %v, want %v", ids(got), want)
	}
}

func (su suite) TestMeta(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	if v, err := s.GetMeta(ctx, "instance_id"); err != nil || v != "" {
		t.Fatalf("GetMeta unset = %q, %v", v, err)
	}
	for _, v := range []string{"one", "two"} {
		if err := s.SetMeta(ctx, "instance_id", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetMeta(ctx, "instance_id"); err != nil || got != v {
			t.Fatalf("GetMeta = %q, %v; want %q", got, err, v)
		}
	}
}

func (su suite) TestAddJobWithStatus(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	n := newJob("f", "broken.mov")
	n.Status, n.Reason = StatusAttention, "file never became readable"
	j, created, err := s.AddJob(ctx, n, t0)
	if err != nil || !created || j.Status != StatusAttention || j.LastError != n.Reason || j.Step != StepFound {
		t.Fatalf("AddJob with status = %+v, created %v, %v", j, created, err)
	}
	if got, _ := s.Claim(ctx, "w", nil, t0.Add(time.Hour), time.Minute, 10); len(got) != 0 {
		t.Fatalf("a job added as attention was claimable: %v", ids(got))
	}
	if ev, _ := s.History(ctx, j.ID); len(ev) != 1 || ev[0].Status != StatusAttention || ev[0].Message != "found: "+n.Reason {
		t.Fatalf("history = %+v", ev)
	}
	plain := newJob("f", "ok.mov")
	plain.Reason = "ignored without a status"
	if j, _, _ := s.AddJob(ctx, plain, t0); j.LastError != "" || j.Status != StatusActive {
		t.Fatalf("AddJob without status = %+v", j)
	}
}

func (su suite) TestAddJobsBatch(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	known := mustAdd(t, s, newJob("/in", "known.mov"), t0)
	batch := []NewJob{newJob("/in", "new1.mov"), newJob("/in", "known.mov"), newJob("/in", "new2.mov"), newJob("/in", "new1.mov")}
	jobs, created, err := s.AddJobs(ctx, batch, t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false}; !reflect.DeepEqual(created, want) {
		t.Fatalf("created = %v, want %v", created, want)
	}
	if jobs[1].ID != known.ID || jobs[3].ID != jobs[0].ID || jobs[0].ID == jobs[2].ID {
		t.Fatalf("ids = %d %d %d %d (known %d)", jobs[0].ID, jobs[1].ID, jobs[2].ID, jobs[3].ID, known.ID)
	}
	for i, j := range jobs {
		if j.RelPath != batch[i].RelPath {
			t.Fatalf("result %d is %s, want %s", i, j.RelPath, batch[i].RelPath)
		}
		ev, err := s.History(ctx, j.ID)
		if err != nil || len(ev) != 1 {
			t.Fatalf("%s: %d events, %v; want one 'found' event", j.RelPath, len(ev), err)
		}
	}
	if _, _, err := s.AddJobs(ctx, []NewJob{{Folder: "/in"}}, t0); err == nil {
		t.Fatal("a batch with a job lacking its path must be refused")
	}
}

func (su suite) TestReopenOnlyAnUnchangedClosedJob(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	clock := t0
	s.setClock(func() time.Time { return clock })
	j := mustAdd(t, s, newJob("/in", "r.mov"), t0)

	// An open job is not reopened.
	open := *mustGet(t, s, j.ID)
	if err := s.Reopen(ctx, &open, "retry"); !errors.Is(err, ErrChanged) {
		t.Fatalf("Reopen of an active job = %v, want ErrChanged", err)
	}

	failed := *mustGet(t, s, j.ID)
	failed.Status, failed.LastError = StatusFailed, "boom"
	clock = clock.Add(time.Second)
	mustSave(t, s, &failed, "failed")

	// Two retries read the same failed job; the first wins, the second finds it changed.
	first, second := *mustGet(t, s, j.ID), *mustGet(t, s, j.ID)
	clock = clock.Add(time.Second)
	first.Status, first.LastError = StatusActive, ""
	if err := s.Reopen(ctx, &first, "retry 1"); err != nil {
		t.Fatalf("Reopen of a failed job = %v", err)
	}
	second.Status, second.Step = StatusActive, StepFinalized
	if err := s.Reopen(ctx, &second, "retry 2"); !errors.Is(err, ErrChanged) {
		t.Fatalf("stale Reopen = %v, want ErrChanged", err)
	}
	if got := mustGet(t, s, j.ID); got.Status != StatusActive || got.Step != StepFound {
		t.Fatalf("job after the stale Reopen: %s at %s", got.Status, got.Step)
	}
}

// A skipped job (a file that vanished while its share was away) can be asked to run again.
func (su suite) TestReopenSkippedJob(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	j := mustAdd(t, s, newJob("/in", "s.mov"), t0)
	j.Status, j.Note = StatusSkipped, "the source file disappeared"
	mustSave(t, s, &j, "skipped")
	got := *mustGet(t, s, j.ID)
	got.Status, got.Note = StatusActive, ""
	if err := s.Reopen(ctx, &got, "retry"); err != nil {
		t.Fatalf("Reopen of a skipped job = %v", err)
	}
	if g := mustGet(t, s, j.ID); g.Status != StatusActive {
		t.Fatalf("status %s after Reopen", g.Status)
	}
}

func (su suite) TestSaveIfUnchanged(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	clock := t0
	s.setClock(func() time.Time { return clock })
	j := mustAdd(t, s, newJob("/in", "c.mov"), t0)
	read := *mustGet(t, s, j.ID)

	// The daemon writes the job after the command line read it.
	daemon := *mustGet(t, s, j.ID)
	daemon.Step = StepRunFinished
	clock = clock.Add(time.Second)
	mustSave(t, s, &daemon, "run finished")

	read.RunStatus = "cancel_requested"
	if err := s.SaveIfUnchanged(ctx, &read, "cancel"); !errors.Is(err, ErrChanged) {
		t.Fatalf("stale SaveIfUnchanged = %v, want ErrChanged", err)
	}
	fresh := *mustGet(t, s, j.ID)
	if fresh.Step != StepRunFinished {
		t.Fatalf("the daemon's write was lost: %s", fresh.Step)
	}
	fresh.RunStatus = "cancel_requested"
	clock = clock.Add(time.Second)
	if err := s.SaveIfUnchanged(ctx, &fresh, "cancel"); err != nil {
		t.Fatalf("SaveIfUnchanged of a fresh read = %v", err)
	}
	if got := mustGet(t, s, j.ID); got.RunStatus != "cancel_requested" || got.Step != StepRunFinished {
		t.Fatalf("after SaveIfUnchanged: %+v", got)
	}
}

func (su suite) TestWaitingIsNotClaimedAndReopens(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	n := newJob("/in", "held.mov")
	n.Status, n.Reason = StatusWaiting, "waiting for approval"
	j, created, err := s.AddJob(ctx, n, t0)
	if err != nil || !created || j.Status != StatusWaiting || j.LastError != n.Reason {
		t.Fatalf("AddJob waiting = %+v, %v, %v", j, created, err)
	}
	if got, _ := s.Claim(ctx, "w", nil, t0.Add(time.Hour), time.Minute, 10); len(got) != 0 {
		t.Fatalf("a waiting job was claimed: %v", ids(got))
	}
	held := *mustGet(t, s, j.ID)
	held.Status, held.LastError, held.NextAttemptAt = StatusActive, "", t0
	if err := s.Reopen(ctx, &held, "approved"); err != nil {
		t.Fatalf("Reopen of a waiting job = %v", err)
	}
	if got, _ := s.Claim(ctx, "w", nil, t0.Add(time.Hour), time.Minute, 10); len(got) != 1 {
		t.Fatalf("the approved job was not claimable: %v", ids(got))
	}
}

func (su suite) TestRunsStartedSince(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	jobs := addN(t, s, 4)
	for i, at := range []time.Time{t0.Add(-25 * time.Hour), t0.Add(-2 * time.Hour), t0.Add(-time.Hour), {}} {
		j := jobs[i]
		j.RunStartAt = at
		mustSave(t, s, &j, "start")
	}
	got, err := s.RunsStartedSince(ctx, t0.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].At.Equal(t0.Add(-2*time.Hour)) || !got[1].At.Equal(t0.Add(-time.Hour)) ||
		got[0].Folder != "f" {
		t.Fatalf("RunsStartedSince = %+v", got)
	}
}

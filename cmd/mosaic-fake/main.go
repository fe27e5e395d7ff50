// Command mosaic-fake serves the fake Mosaic API (package mosaictest) for
// manual testing and end-to-end runs of mosaic-watch.
//
//	go run ./cmd/mosaic-fake -addr 127.0.0.1:8686
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// Fixed agent ids so configs written against the fake keep working across restarts.
var standardAgents = []struct {
	spec     mosaictest.AgentSpec
	behavior string
}{
	{mosaictest.AgentSpec{ID: "a0000000-0000-4000-8000-000000000001", Name: "Completes with 1 output"},
		"completed, 1 output"},
	{mosaictest.AgentSpec{ID: "a0000000-0000-4000-8000-000000000003",
		Name: "Completes with 3 outputs", Outputs: 3},
		"completed, 3 outputs"},
	{mosaictest.AgentSpec{ID: "a0000000-0000-4000-8000-00000000000b", Name: "Partial", Outputs: 3,
		Outcome: mosaictest.OutcomePartial},
		"partial_complete, 2 of 3 outputs (last render fails)"},
	{mosaictest.AgentSpec{ID: "a0000000-0000-4000-8000-00000000000f", Name: "Fails",
		Outcome: mosaictest.OutcomeFailed},
		"failed, no outputs, errors[] set"},
	{mosaictest.AgentSpec{ID: "a0000000-0000-4000-8000-00000000000c", Name: "Needs credits",
		Outcome: mosaictest.OutcomeNeedsCredits},
		"failed with needs_credits:true (resume completes it)"},
	{mosaictest.AgentSpec{ID: "a0000000-0000-4000-8000-000000000002", Name: "Two video inputs",
		VideoInputs: 2},
		"two Video Input nodes (mosaic-watch does not support it yet)"},
	{mosaictest.AgentSpec{ID: "a0000000-0000-4000-8000-000000000009", Name: "Generation only",
		GenerationOnly: true},
		"no Video Input node (mosaic-watch does not support it yet)"},
}

type config struct {
	addr, basePath, key, secret, logLevel string
	runDuration, uploadTTL, downloadTTL   time.Duration
	faultRate                             float64
	seed                                  int64
	legacyWhoAmI, strictRunBody           bool
	manual                                bool
	outputSize                            int
	maxFileSize                           int64
	dupWebhooks, reorderWebhooks          bool
	dropWebhooks, progressWebhooks        bool
	clockOffset                           time.Duration
	lostRunRate, noRunRate, lateRunRate   float64
	lateRunDelay                          time.Duration
	dashboardRuns, otherClientRuns        time.Duration
	credits                               int
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("mosaic-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mosaic-fake [flags]\n\n"+
			"Serves a fake Mosaic API on loopback with seven standard agents\n"+
			"(completed x1, completed x3, partial, failed, needs credits, two video inputs,\n"+
			"generation only). Prints its URL, API key and agent ids. Ctrl-C or SIGTERM\n"+
			"stops it.\n\n"+
			"It is as strict as Mosaic's newest docs: run listings do not name their input\n"+
			"videos, and every answer is dated by the fake's clock (-clock-offset). The\n"+
			"-lost-run-rate, -no-run-rate, -late-run-rate, -dashboard-runs-every and\n"+
			"-other-client-runs-every flags make it as unkind as the real service.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8686",
		"listen `address` (use 127.0.0.1:0 for a free port)")
	fs.StringVar(&c.basePath, "base-path", "",
		"mount the API under this `prefix`, e.g. /api/v1 (storage and download routes stay at the root)")
	fs.StringVar(&c.key, "key", mosaictest.DefaultAPIKey, "accepted API `key` (must start with mk_)")
	fs.DurationVar(&c.runDuration, "run-duration", 5*time.Second,
		"time from run start to its terminal status")
	fs.BoolVar(&c.manual, "manual-runs", false,
		"runs never finish on their own (only useful embedded in tests)")
	fs.Float64Var(&c.faultRate, "fault-rate", 0,
		"probability `p` (0..1) that an API request fails; split evenly between 503, "+
			"429 (half with Retry-After: 1) and a dropped connection; storage and download routes "+
			"are spared")
	fs.Int64Var(&c.seed, "seed", 1, "seed for -fault-rate")
	fs.BoolVar(&c.legacyWhoAmI, "legacy-whoami", false,
		"GET /whoami returns the older user shape (user_id, email, ...) "+
			"instead of the organization shape")
	fs.BoolVar(&c.strictRunBody, "strict-run-body", false,
		"reject unknown fields in POST /agent/{id}/run bodies")
	fs.StringVar(&c.secret, "webhook-secret", "",
		"send this `secret` as plaintext X-Mosaic-Signature on webhooks")
	fs.BoolVar(&c.dupWebhooks, "webhook-duplicates", false, "deliver every webhook twice")
	fs.BoolVar(&c.reorderWebhooks, "webhook-out-of-order", false,
		"deliver RUN_STARTED after RUN_FINISHED")
	fs.BoolVar(&c.dropWebhooks, "webhook-drop", false, "never deliver webhooks (clients must poll)")
	fs.BoolVar(&c.progressWebhooks, "webhook-progress", false,
		"also send a RUN_PROGRESS webhook after RUN_STARTED")
	fs.IntVar(&c.outputSize, "output-size", 64<<10, "`bytes` per output file")
	fs.Int64Var(&c.maxFileSize, "max-file-size", mosaictest.DefaultMaxFileSize,
		"upload size limit in `bytes`")
	fs.DurationVar(&c.uploadTTL, "upload-url-ttl", time.Hour, "lifetime of upload policies")
	fs.DurationVar(&c.downloadTTL, "download-url-ttl", 7*24*time.Hour,
		"lifetime of signed output URLs")
	fs.DurationVar(&c.clockOffset, "clock-offset", 0,
		"how far Mosaic's clock is ahead of this machine's (negative: behind), e.g. -3m")
	fs.Float64Var(&c.lostRunRate, "lost-run-rate", 0,
		"probability `p` that a run start's answer is lost after the run was made")
	fs.Float64Var(&c.noRunRate, "no-run-rate", 0,
		"probability `p` that a run start is lost without a run being made")
	fs.Float64Var(&c.lateRunRate, "late-run-rate", 0,
		"probability `p` that a run start is answered 504 and its run appears -late-run-delay later")
	fs.DurationVar(&c.lateRunDelay, "late-run-delay", 20*time.Second,
		"how long after its 504 a late run appears")
	fs.DurationVar(&c.dashboardRuns, "dashboard-runs-every", 0,
		"start a colleague's dashboard run (triggered_by set) of the first agent this often (0 = never)")
	fs.DurationVar(&c.otherClientRuns, "other-client-runs-every", 0,
		"start another API client's run of the first agent this often (0 = never); "+
			"mosaic-watch then treats the agent as shared")
	fs.IntVar(&c.credits, "credits", 2500,
		"the account's starting credit balance (GET /credits); each run costs one")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"-fault-rate", c.faultRate}, {"-lost-run-rate", c.lostRunRate},
		{"-no-run-rate", c.noRunRate}, {"-late-run-rate", c.lateRunRate}} {
		if r.v < 0 || r.v > 1 {
			return nil, fmt.Errorf("%s must be between 0 and 1", r.name)
		}
	}
	if c.lostRunRate+c.noRunRate+c.lateRunRate > 1 {
		return nil, fmt.Errorf("-lost-run-rate, -no-run-rate and -late-run-rate add up to more than 1")
	}
	return c, nil
}

func options(c *config, log *slog.Logger) mosaictest.Options {
	o := mosaictest.Options{
		Addr: c.addr, BasePath: c.basePath, APIKeys: []string{c.key},
		RunDuration: c.runDuration, ManualRuns: c.manual, LegacyWhoAmI: c.legacyWhoAmI,
		UploadURLTTL: c.uploadTTL, DownloadURLTTL: c.downloadTTL, MaxFileSize: c.maxFileSize,
		StrictRunBody: c.strictRunBody, OutputSize: c.outputSize, WebhookSecret: c.secret,
		Seed: c.seed, Logger: log, ClockOffset: c.clockOffset, Credits: c.credits,
		Webhooks: mosaictest.WebhookKnobs{Duplicate: c.dupWebhooks, OutOfOrder: c.reorderWebhooks,
			Drop: c.dropWebhooks, Progress: c.progressWebhooks},
	}
	for _, a := range standardAgents {
		o.Agents = append(o.Agents, a.spec)
	}
	return o
}

// injectFaultRate spreads rate evenly over 503, 429 (with and without Retry-After) and drops.
func injectFaultRate(s *mosaictest.Server, rate float64) {
	if rate <= 0 {
		return
	}
	// Faults are tried in order, each with its own coin, so convert the total
	// rate into per-fault conditional probabilities.
	kinds := []mosaictest.Fault{
		{Kind: mosaictest.FaultStatus, Status: 503},
		{Kind: mosaictest.FaultRateLimit, RetryAfter: time.Second},
		{Kind: mosaictest.FaultRateLimit},
		{Kind: mosaictest.FaultDrop},
	}
	weights := []float64{1.0 / 3, 1.0 / 6, 1.0 / 6, 1.0 / 3}
	for _, r := range mosaictest.APIRoutes {
		left := 1.0
		for i, f := range kinds {
			p := rate * weights[i] / (1 - rate*(1-left))
			f.Probability = min(p, 1)
			s.InjectFault(r, f)
			left -= weights[i]
		}
	}
}

// injectRunStartFaults makes run starts lose their answer, create no run, or create it late.
// The rates are of all run starts; faults are tried in order, so each gets its share.
func injectRunStartFaults(s *mosaictest.Server, c *config) {
	left := 1.0
	for _, f := range []mosaictest.Fault{
		{Kind: mosaictest.FaultLoseResponse, Probability: c.lostRunRate},
		{Kind: mosaictest.FaultLoseRequest, Probability: c.noRunRate},
		{Kind: mosaictest.FaultLateRun, Status: 504, Delay: c.lateRunDelay, Probability: c.lateRunRate},
	} {
		if f.Probability <= 0 {
			continue
		}
		rate := f.Probability
		f.Probability = min(rate/left, 1)
		s.InjectFault(mosaictest.RouteRunAgent, f)
		left -= rate
	}
}

// foreignRuns starts a colleague's or another client's run of agentID every so often.
func foreignRuns(ctx context.Context, s *mosaictest.Server, agentID string, every time.Duration,
	trig map[string]any, log *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			id, err := s.StartForeignRun(agentID, mosaictest.ForeignRun{TriggeredBy: trig})
			log.Info("mosaic-fake: started a run of another party",
				"agent", agentID, "run", id, "triggered_by", trig, "err", err)
		}
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	srv, err := mosaictest.NewServer(options(c, log))
	if err != nil {
		return fmt.Errorf("start fake: %w", err)
	}
	defer srv.Close()
	injectRunStartFaults(srv, c)
	injectFaultRate(srv, c.faultRate)
	first := standardAgents[0].spec.ID
	go foreignRuns(ctx, srv, first, c.dashboardRuns, map[string]any{"type": "dashboard"}, log)
	go foreignRuns(ctx, srv, first, c.otherClientRuns, nil, log)

	fmt.Fprintf(stdout, "mosaic-fake listening\n  base URL: %s\n  API key:  %s\n"+
		"  run duration: %s, fault rate: %g, clock offset: %s\n  agents:\n",
		srv.URL(), c.key, c.runDuration, c.faultRate, c.clockOffset)
	for _, a := range standardAgents {
		fmt.Fprintf(stdout, "    %s  %s\n", a.spec.ID, a.behavior)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "mosaic-fake: shutting down")
	if err := srv.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mosaic-fake:", err)
		os.Exit(2)
	}
}

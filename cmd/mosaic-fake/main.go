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
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("mosaic-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mosaic-fake [flags]\n\n"+
			"Serves a fake Mosaic API on loopback with five standard agents\n"+
			"(completed x1, completed x3, partial, failed, needs credits). Prints its URL,\n"+
			"API key and agent ids. Ctrl-C or SIGTERM stops it.\n\nFlags:\n")
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
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.faultRate < 0 || c.faultRate > 1 {
		return nil, fmt.Errorf("-fault-rate must be between 0 and 1")
	}
	return c, nil
}

func options(c *config, log *slog.Logger) mosaictest.Options {
	o := mosaictest.Options{
		Addr: c.addr, BasePath: c.basePath, APIKeys: []string{c.key},
		RunDuration: c.runDuration, ManualRuns: c.manual, LegacyWhoAmI: c.legacyWhoAmI,
		UploadURLTTL: c.uploadTTL, DownloadURLTTL: c.downloadTTL, MaxFileSize: c.maxFileSize,
		StrictRunBody: c.strictRunBody, OutputSize: c.outputSize, WebhookSecret: c.secret,
		Seed: c.seed, Logger: log,
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
	injectFaultRate(srv, c.faultRate)

	fmt.Fprintf(stdout, "mosaic-fake listening\n  base URL: %s\n  API key:  %s\n"+
		"  run duration: %s, fault rate: %g\n  agents:\n",
		srv.URL(), c.key, c.runDuration, c.faultRate)
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

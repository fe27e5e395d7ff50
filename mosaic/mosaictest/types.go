// Package mosaictest is a faithful, stateful fake of the Mosaic REST API (see
// ../shared/mosaic-api.md §11, beside the repository). It serves real HTTP on loopback: API-key
// auth, both upload eras, a fake GCS POST-policy storage host, agents, runs
// driven by a clock, signed downloads, webhooks and injectable faults.
//
// Routes under Options.BasePath (Bearer mk_ key required):
//
//	GET  /whoami
//	POST /uploads/video/get_upload_url, /uploads/video/finalize_upload   (newest)
//	POST /videos/get_upload_url, /videos/finalize_upload                 (seed era)
//	GET  /agents, /agent/{id}
//	POST /agent/{id}/run
//	GET  /agent/{id}/runs, /agent_runs
//	GET  /agent_run/{id}, /agent_run/{id}/nodes
//	POST /agent_run/{id}/cancel, /agent_run/{id}/resume
//
// Routes at the server root, like separate storage hosts (no key needed):
//
//	POST /storage/fake-mosaic-uploads           fake GCS POST-policy upload (204)
//	GET  /download/{render_id}?expires=&sig=     output bytes (Range supported)
//	GET  /thumbnail/{id}?expires=&sig=           tiny thumbnail
//	GET  /source/{video_id}?expires=&sig=        input URL (bytes are not kept: 404)
package mosaictest

import (
	"log/slog"
	"time"
)

// DefaultAPIKey is accepted when Options.APIKeys is nil.
const DefaultAPIKey = "mk_test_0123456789abcdef"

// DefaultMaxFileSize is the 5 GiB upload limit Mosaic documents.
const DefaultMaxFileSize int64 = 5368709120

// Outcome is how a run ends.
type Outcome string

const (
	OutcomeCompleted    Outcome = "completed"
	OutcomePartial      Outcome = "partial_complete"
	OutcomeFailed       Outcome = "failed"
	OutcomeNeedsCredits Outcome = "needs_credits"
)

// AgentSpec describes an agent registered on the fake.
type AgentSpec struct {
	ID          string         // "" => random uuid
	Name        string         // "" => "Fake agent N"
	Nodes       []string       // agent_node_ids; nil => two generated nodes (video input, edit); Nodes[0] is the video input node
	Outputs     int            // outputs per successful run; 0 => 1 (partial: the last one fails, so at least 2 are planned)
	Outcome     Outcome        // "" => completed
	RunDuration *time.Duration // nil => Options.RunDuration
}

// WebhookKnobs change how webhooks are delivered (see SetWebhookKnobs).
type WebhookKnobs struct {
	Duplicate  bool // deliver every event twice
	OutOfOrder bool // hold RUN_STARTED back and deliver it after RUN_FINISHED
	Drop       bool // deliver nothing (clients must fall back to polling)
	Progress   bool // also send one RUN_PROGRESS (input node completed) after RUN_STARTED
}

// Options configure NewServer. The zero value is usable.
type Options struct {
	Addr           string           // listen address, default "127.0.0.1:0"
	BasePath       string           // mount the API under this prefix, e.g. "/api/v1" ("" = root)
	APIKeys        []string         // accepted keys; nil => []string{DefaultAPIKey}; each must start with mk_
	Agents         []AgentSpec      // registered at start (more via AddAgent)
	RunDuration    time.Duration    // time from start to terminal status (0 => terminal at the first GET after start)
	ManualRuns     bool             // runs stay "running" until FinishRun
	LegacyWhoAmI   bool             // whoami returns the older user shape
	UploadURLTTL   time.Duration    // default 1h
	DownloadURLTTL time.Duration    // default 7*24h
	MaxFileSize    int64            // default 5 GiB (5368709120)
	StrictRunBody  bool             // reject unknown fields in run body (default accept)
	OutputSize     int              // bytes per output file, default 64 KiB (deterministic, see OutputBytes)
	WebhookSecret  string           // sent as plaintext X-Mosaic-Signature when set
	Seed           int64            // for probabilistic faults
	Now            func() time.Time // clock, default time.Now
	Logger         *slog.Logger

	// Additions beyond the shared contract.
	Webhooks          WebhookKnobs  // initial webhook knobs (change later with SetWebhookKnobs)
	WebhookRetryDelay time.Duration // base backoff between webhook attempts, default 100ms (doubles)
	WebhookTimeout    time.Duration // per delivery attempt, default 30s
	OlderRunShape     bool          // GET run omits status_message, needs_credits, errors, node_status_counts and output id/original_node_id/premiere_prproj_url (older captures)
}

// RunInfo is a snapshot of one run (see Server.Runs).
type RunInfo struct {
	ID, AgentID, Status string
	VideoIDs            []string
	ContentSHA256       []string // SHA-256 of the uploaded bytes, one per entry of VideoIDs
	CreatedAt           time.Time
	CallbackURL         string
}

// Route names an endpoint for fault injection and request statistics.
type Route string

const (
	RouteAny          Route = "*"
	RouteWhoAmI       Route = "whoami"
	RouteGetAgent     Route = "get_agent"
	RouteGetUploadURL Route = "get_upload_url"
	RouteStorage      Route = "storage"
	RouteFinalize     Route = "finalize"
	RouteRunAgent     Route = "run_agent"
	RouteGetRun       Route = "get_run"
	RouteListRuns     Route = "list_runs"
	RouteCancel       Route = "cancel"
	RouteDownload     Route = "download"
	RouteNodes        Route = "nodes"
	RouteResume       Route = "resume"

	// Additions beyond the shared contract.
	RouteListAgents Route = "list_agents"
	RouteUnknown    Route = "unknown" // paths the fake does not serve (stats only)
)

// APIRoutes lists the JSON API routes (not storage/download), e.g. for fault-rate flags.
var APIRoutes = []Route{RouteWhoAmI, RouteGetAgent, RouteListAgents, RouteGetUploadURL, RouteFinalize,
	RouteRunAgent, RouteGetRun, RouteListRuns, RouteCancel, RouteNodes, RouteResume}

// FaultKind is what an injected fault does.
type FaultKind string

const (
	FaultStatus       FaultKind = "status"        // respond with Fault.Status (default 503) and an error body
	FaultRateLimit    FaultKind = "rate_limit"    // 429; Retry-After header when Fault.RetryAfter > 0
	FaultDrop         FaultKind = "drop"          // hijack and close the connection without a response
	FaultSlow         FaultKind = "slow"          // sleep Fault.Delay (respecting request ctx) then handle normally
	FaultLoseResponse FaultKind = "lose_response" // handle the request fully (e.g. create the run), then drop the connection
	FaultNotUploaded  FaultKind = "not_uploaded"  // finalize only: 400 {"error":"validation_error","detail":"File not uploaded"}
	FaultExpired      FaultKind = "expired"       // storage/download: 403 expired-token XML
)

// Fault is injected with Server.InjectFault.
type Fault struct {
	Kind        FaultKind
	Status      int
	RetryAfter  time.Duration
	Delay       time.Duration
	Count       int     // fire on the next Count matching calls (then remove)
	Probability float64 // if Count == 0: fire with this probability forever (seeded)
}

// RunKey identifies runs of one agent on one uploaded content.
type RunKey struct{ ContentSHA256, AgentID string }

// Stats are counters for test assertions (see Server.Stats).
type Stats struct {
	UploadURLsIssued      int
	StoragePosts          int // accepted storage POSTs
	StorageRejected       int
	Finalizes             int // successful
	BytesUploaded         int64
	RunsCreated           int
	RunsByContent         map[RunKey]int // runs created per uploaded content hash and agent
	Requests              map[string]int // "METHOD route status", e.g. "POST run_agent 200"; also class keys "GET get_run 5xx"
	PeakConcurrentUploads int

	// Additions beyond the shared contract.
	WebhooksDelivered int // deliveries answered 2xx
	WebhooksFailed    int // deliveries that gave up after all attempts
	WebhooksRefused   int // non-loopback callback URLs not contacted
}

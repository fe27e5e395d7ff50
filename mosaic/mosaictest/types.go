// Package mosaictest is a faithful, stateful fake of the Mosaic REST API (see
// ../shared/mosaic-api.md §11 and §13, beside the repository). It serves real HTTP on loopback: API-key
// auth, both upload eras, a fake GCS POST-policy storage host, agents, runs
// driven by a clock, signed downloads, webhooks and injectable faults.
//
// It is as strict as Mosaic's newest docs where exactly-once depends on it: no
// run body names its input video ids (inputs are {video_url, thumbnail_url}
// with opaque URLs), run list items carry exactly run_id, agent_id, status,
// status_message, started_at, updated_at, node_status_counts, inputs,
// outputs and triggered_by (no needs_credits), and every response carries a
// Date header from the fake's own clock (Options.ClockOffset). World controls
// make it as unkind as the real service: foreign runs of an agent
// (StartForeignRun), a run start lost with no run created (FaultLoseRequest),
// a run created only after its start was answered 502/504 (FaultLateRun).
//
// Routes under Options.BasePath (Bearer mk_ key required):
//
//	GET  /whoami, /credits
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
//	GET  /source/{token}?expires=&sig=           input URL, opaque (bytes are not kept: 404)
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
	Nodes       []string       // agent_node_ids; nil => generated; the first VideoInputs of them are the Video Input nodes, the last is the edit node
	Outputs     int            // outputs per successful run; 0 => 1 (partial: the last one fails, so at least 2 are planned)
	Outcome     Outcome        // "" => completed
	RunDuration *time.Duration // nil => Options.RunDuration
	// VideoInputs is how many Video Input nodes the agent has (0 => 1). With more
	// than one, runs must name each node in video_inputs (top-level video_ids are
	// refused), as Mosaic documents for multi-input agents.
	VideoInputs int
	// GenerationOnly makes an agent without any Video Input node (its first node is a
	// Video Generation tile): runs carry no video inputs; sending some gives 400.
	GenerationOnly bool
}

// ForeignRun describes a run of an agent that this client did not start (see
// Server.StartForeignRun): a colleague's dashboard run, a trigger's run, or an
// API run of another program using the same organization.
type ForeignRun struct {
	// TriggeredBy is the run's triggered_by object, e.g. {"type": "dashboard"}; nil
	// makes it an API-started run of another client (triggered_by: null).
	TriggeredBy map[string]any
	// BackDate moves the run's start this far into the fake's past (0 = now).
	BackDate time.Duration
	// Content is what the colleague uploaded; outputs derive from its SHA-256
	// (default: a content unique to this run), so they never match ours.
	Content []byte
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

	// World controls (see also StartForeignRun, FaultLoseRequest, FaultLateRun).

	// ClockOffset is how far Mosaic's clock is ahead of ours (negative: behind). It
	// applies to every time the fake reports (started_at, Date headers, URL expiry)
	// and to the from/to filters of run listings. Change it with SetClockOffset.
	ClockOffset time.Duration
	// Credits is the account's starting balance for GET /credits (0 => 2500); every
	// run created costs one credit.
	Credits int
	// RunStartHook, if non-nil, is called (without the fake's lock) when a POST
	// /agent/{id}/run arrives, before faults apply: a test can start a colleague's
	// run at the same moment as ours.
	RunStartHook func(agentID string)
}

// RunInfo is a snapshot of one run (see Server.Runs).
type RunInfo struct {
	ID, AgentID, Status string
	VideoIDs            []string
	ContentSHA256       []string // SHA-256 of the uploaded bytes, one per entry of VideoIDs
	CreatedAt           time.Time
	CallbackURL         string
	Foreign             bool // started with StartForeignRun, not through this API key
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
	RouteCredits      Route = "credits"

	// Additions beyond the shared contract.
	RouteListAgents Route = "list_agents"
	RouteUnknown    Route = "unknown" // paths the fake does not serve (stats only)
)

// APIRoutes lists the JSON API routes (not storage/download), e.g. for fault-rate flags.
var APIRoutes = []Route{RouteWhoAmI, RouteGetAgent, RouteListAgents, RouteGetUploadURL, RouteFinalize,
	RouteRunAgent, RouteGetRun, RouteListRuns, RouteCancel, RouteNodes, RouteResume, RouteCredits}

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
	// FaultLoseRequest (run_agent only) reads the whole request, creates NO run and
	// drops the connection: the client cannot tell it from a lost answer.
	FaultLoseRequest FaultKind = "lose_request"
	// FaultLateRun (run_agent only) validates the request and answers Fault.Status
	// (default 504) at once, like a gateway that gave up; the run is created only
	// Fault.Delay later on the fake's clock (started_at is then), as a backend that
	// went on working would. An invalid request gets its 400 as usual.
	FaultLateRun FaultKind = "late_run"
)

// Fault is injected with Server.InjectFault.
type Fault struct {
	Kind        FaultKind
	Status      int
	RetryAfter  time.Duration
	Delay       time.Duration // FaultSlow: before answering; FaultLateRun: before the run appears
	Count       int           // fire on the next Count matching calls (then remove)
	Probability float64       // if Count == 0: fire with this probability forever (seeded)
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
	RunsCreated           int            // runs started through the API (late ones once they appear); not foreign runs
	RunsByContent         map[RunKey]int // runs created per uploaded content hash and agent (not foreign runs)
	Requests              map[string]int // "METHOD route status", e.g. "POST run_agent 200"; also class keys "GET get_run 5xx"
	PeakConcurrentUploads int

	// Additions beyond the shared contract.
	WebhooksDelivered int // deliveries answered 2xx
	WebhooksFailed    int // deliveries that gave up after all attempts
	WebhooksRefused   int // non-loopback callback URLs not contacted
	ForeignRuns       int // runs started with StartForeignRun
	LateRunsPending   int // FaultLateRun runs that have not appeared yet
	Resumes           int // successful POST /agent_run/{id}/resume
	Cancels           int // successful POST /agent_run/{id}/cancel
}

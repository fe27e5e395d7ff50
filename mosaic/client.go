// Package mosaic is a client for the Mosaic REST API (https://docs.mosaic.so): uploads, agent runs,
// run status and output downloads. It classifies every failure into one typed error (see APIError,
// IsRetryable, OutcomeUnknown) and never lets the API key or a signed URL's query string reach an
// error string or a log line.
package mosaic

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://api.mosaic.so"

const (
	defaultUserAgent      = "mosaic-watch"
	defaultMaxRetries     = 4
	defaultRetryBaseDelay = 500 * time.Millisecond
	defaultMaxRetryDelay  = 30 * time.Second
	defaultRequestTimeout = 60 * time.Second
)

// Options configures a Client. Zero values mean the documented defaults.
type Options struct {
	BaseURL        string        // default DefaultBaseURL; may carry a path prefix ("http://127.0.0.1:9/api/v1")
	APIKey         string        // sent as "Authorization: Bearer <key>" to API calls only
	HTTPClient     *http.Client  // default: own transport with dial/TLS/response-header timeouts, NO overall Timeout
	UserAgent      string        // default "mosaic-watch"
	Logger         *slog.Logger  // default discard
	MaxRetries     int           // retries for safe calls (GETs, finalize); 0 => default 4; negative => none
	RetryBaseDelay time.Duration // default 500ms (tests use ~5ms)
	MaxRetryDelay  time.Duration // default 30s (cap, also caps Retry-After honoured inside the client)
	RequestTimeout time.Duration // per attempt, JSON API calls only (not Upload/Download bodies); default 60s
	// OnResponse, when set, is called once per HTTP attempt (for metrics) with the operation
	// ("get run", "upload", "download", ...), the status code (0 for a network error) and the time
	// until the response headers arrived. It must be cheap and must not block.
	OnResponse func(op string, status int, took time.Duration)
	// Now is this machine's clock, against which Mosaic's is measured (see ClockOffset);
	// default time.Now. Tests that move a fake clock pass the same one here.
	Now func() time.Time
}

// Client talks to one Mosaic API base URL with one key. It is safe for concurrent use.
type Client struct {
	base           *url.URL               // no trailing slash in Path
	apiKey         atomic.Pointer[string] // swapped by SetAPIKey; read once per request
	hc             *http.Client
	userAgent      string
	log            *slog.Logger
	maxRetries     int
	retryBase      time.Duration
	maxRetryDelay  time.Duration
	requestTimeout time.Duration
	redact         atomic.Pointer[redactor] // scrubs the current and every earlier key
	onResponse     func(op string, status int, took time.Duration)

	statusMu   sync.Mutex
	seenStatus map[string]bool // unknown run statuses already logged

	now   func() time.Time
	clock serverClock // Mosaic's clock, from the Date headers of API answers
}

// New validates opts and returns a client. It performs no I/O.
func New(opts Options) (*Client, error) {
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil {
		return nil, fmt.Errorf("mosaic: invalid base URL %q", RedactURL(base))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mosaic: base URL %q must be http(s)://host[/prefix]", RedactURL(base))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("mosaic: base URL %q must not carry a query, fragment or user info", RedactURL(base))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if strings.ContainsAny(opts.APIKey, "\r\n\t ") {
		// Never echo the key: it is a secret even when malformed.
		return nil, errors.New("mosaic: API key contains whitespace or control characters")
	}

	c := &Client{
		base:           u,
		hc:             opts.HTTPClient,
		userAgent:      opts.UserAgent,
		log:            opts.Logger,
		maxRetries:     opts.MaxRetries,
		retryBase:      opts.RetryBaseDelay,
		maxRetryDelay:  opts.MaxRetryDelay,
		requestTimeout: opts.RequestTimeout,
		onResponse:     opts.OnResponse,
		seenStatus:     map[string]bool{},
		now:            opts.Now,
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.apiKey.Store(&opts.APIKey)
	c.redact.Store(newRedactor(opts.APIKey))
	if c.hc == nil {
		c.hc = &http.Client{Transport: newTransport()}
	}
	if c.userAgent == "" {
		c.userAgent = defaultUserAgent
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = defaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.retryBase <= 0 {
		c.retryBase = defaultRetryBaseDelay
	}
	if c.maxRetryDelay <= 0 {
		c.maxRetryDelay = defaultMaxRetryDelay
	}
	if c.requestTimeout <= 0 {
		c.requestTimeout = defaultRequestTimeout
	}
	return c, nil
}

// newTransport bounds every phase that can hang before a response starts, but sets no overall
// deadline: uploads and downloads of several GB must be allowed to take as long as they take.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute, // storage may take a while to answer after a 5 GB body
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
	}
}

// endpoint joins the base URL (with its path prefix) and API path segments, escaping each segment
// so an id can never change the route.
func (c *Client) endpoint(query url.Values, segments ...string) string {
	u := *c.base
	var raw strings.Builder
	raw.WriteString(c.base.Path)
	for _, s := range segments {
		raw.WriteByte('/')
		raw.WriteString(url.PathEscape(s))
	}
	p, err := url.PathUnescape(raw.String())
	if err == nil {
		u.Path = p
		u.RawPath = raw.String()
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String()
}

// SetAPIKey makes every request from now on use key (a configuration reload). Requests in
// flight finish with the key they started with. The old key stays redacted from errors.
func (c *Client) SetAPIKey(key string) error {
	if strings.ContainsAny(key, "\r\n\t ") {
		return errors.New("mosaic: API key contains whitespace or control characters")
	}
	c.apiKey.Store(&key)
	c.redact.Store(c.redact.Load().with(key))
	return nil
}

// CloseIdleConnections closes idle keep-alive connections (shutdown, tests).
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

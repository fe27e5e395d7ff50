package mosaic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
)

const (
	maxJSONBody  = 16 << 20 // a successful API answer larger than this is not Mosaic
	maxErrorBody = 64 << 10 // enough of an error body to classify it
)

// apiCall describes one JSON API request.
type apiCall struct {
	op     string
	method string
	url    string
	in     any  // request body, JSON-encoded; nil => no body
	safe   bool // idempotent: retried inside the client
	// retryAlso makes more errors retryable for this call (finalize's 400 "not uploaded").
	retryAlso func(error) bool
}

// doJSON performs the call (with retries when safe) and decodes a successful answer into out
// (unless out is nil). Unknown fields in the answer are ignored.
func (c *Client) doJSON(ctx context.Context, call apiCall, out any) error {
	var body []byte
	if call.in != nil {
		var err error
		if body, err = json.Marshal(call.in); err != nil {
			return fmt.Errorf("mosaic: %s: encode request: %w", call.op, err)
		}
	}
	attempt := func(ctx context.Context) error { return c.attemptJSON(ctx, call, body, out) }
	if !call.safe {
		return attempt(ctx)
	}
	return c.retry(ctx, call.op, call.retryAlso, attempt)
}

// attemptJSON sends one request bounded by RequestTimeout. httptrace tells whether the request was
// completely written, which is what OutcomeUnknown needs for RunAgent.
func (c *Client) attemptJSON(ctx context.Context, call apiCall, body []byte, out any) error {
	if err := ctx.Err(); err != nil {
		return c.ctxError(ctx, call.op, call.method, call.url, err)
	}
	actx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()

	var sent atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				sent.Store(true)
			}
		},
	})
	var rdr io.Reader
	if call.in != nil {
		rdr = bytes.NewReader(body) // fresh reader per attempt
	}
	req, err := http.NewRequestWithContext(actx, call.method, call.url, rdr)
	if err != nil {
		return fmt.Errorf("mosaic: %s: build request for %s: %s", call.op, RedactURL(call.url), c.redact.Load().text(err.Error()))
	}
	if key := *c.apiKey.Load(); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if call.in != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	sentAt := c.now()
	resp, err := c.do(call.op, req)
	if err != nil {
		return c.netError(ctx, call.op, req, err, sent.Load())
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// Only Mosaic's own answers date Mosaic's clock. A gateway or proxy on the way (its
		// 502/504, a 407 or 429 of its own) dates its answer by its own clock, often this
		// machine's: taken as Mosaic's, it would move the window in which a lost start's run is
		// looked for, miss the run, and bill a second one. No gateway answers 2xx for Mosaic.
		c.clock.observe(resp.Header.Get("Date"), sentAt, c.now())
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return c.newAPIError(call.op, req, resp, data, false)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if err != nil {
		// The server answered 2xx and then the body broke: it acted on the request.
		return c.netError(ctx, call.op, req, err, true)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &APIError{
			Op: call.op, Method: req.Method, URL: RedactURL(req.URL.String()), StatusCode: resp.StatusCode,
			Detail: "unreadable response: " + c.redact.Load().text(err.Error()),
		}
	}
	return nil
}

// netError converts a transport failure into *NetError, dropping *url.Error (whose message holds the
// full URL) and classifying the caller's cancellation apart from timeouts.
func (c *Client) netError(ctx context.Context, op string, req *http.Request, err error, sent bool) *NetError {
	ne := &NetError{Op: op, Method: req.Method, URL: RedactURL(req.URL.String()), Sent: sent}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	switch {
	case ctx.Err() != nil:
		ne.Err = ctx.Err()
		ne.Canceled = ctx.Err() == context.Canceled
		ne.Timeout = !ne.Canceled
	case isTimeoutErr(inner):
		ne.Err = errAttemptTimeout
		ne.Timeout = true
	default:
		ne.Err = inner
	}
	ne.msg = c.redact.Load().text(inner.Error())
	if ne.Timeout && !strings.Contains(ne.msg, "timeout") && !strings.Contains(ne.msg, "deadline") {
		ne.msg = "timeout: " + ne.msg
	}
	return ne
}

// ctxError reports that the caller's context had already ended before a request was sent.
func (c *Client) ctxError(ctx context.Context, op, method, rawURL string, err error) *NetError {
	return &NetError{
		Op: op, Method: method, URL: RedactURL(rawURL), Err: err,
		Canceled: err == context.Canceled, Timeout: err != context.Canceled,
		msg: err.Error(),
	}
}

// isTimeoutErr: the attempt's own deadline, a transport timeout, or an attempt context we
// cancelled ourselves (stall watchdog) while the caller's context is still alive.
func isTimeoutErr(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

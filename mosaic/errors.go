package mosaic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIError is an HTTP answer other than success, from the Mosaic API or from a signed storage URL.
type APIError struct {
	Op         string // "get run", "run agent", ...
	Method     string
	URL        string // redacted: no query string
	StatusCode int
	Code       string        // body "error" field, may be ""
	Detail     string        // body "detail" (string, or FastAPI array joined), or a short text/HTML excerpt
	RetryAfter time.Duration // from Retry-After (seconds or HTTP date), 0 if absent

	storage bool // answered by a signed storage/download URL, not by the Mosaic API
	expired bool // storage said the signature/policy expired
}

// errorPrefix starts every error message of the client: "mosaic: OP: METHOD URL: ".
func errorPrefix(b *strings.Builder, op, method, url string) {
	b.WriteString("mosaic: ")
	if op != "" {
		b.WriteString(op)
		b.WriteString(": ")
	}
	if method != "" || url != "" {
		b.WriteString(strings.TrimSpace(method + " " + url))
		b.WriteString(": ")
	}
}

func (e *APIError) Error() string {
	var b strings.Builder
	errorPrefix(&b, e.Op, e.Method, e.URL)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	} else {
		b.WriteString("unexpected response")
	}
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// NetError is a failure with no usable HTTP answer: dial, TLS, reset, timeout, truncated body, or the
// caller's own cancellation. It never carries the request URL's query or the API key.
type NetError struct {
	Op     string
	Method string
	URL    string // redacted
	Err    error  // cause; context.Canceled / context.DeadlineExceeded when the caller's ctx ended

	// Sent reports that the request (headers and body) was completely written to the connection,
	// so the server may have acted on it.
	Sent bool
	// Timeout reports a timeout of an attempt (or of the caller's deadline).
	Timeout bool
	// Canceled reports that the caller's own context was cancelled.
	Canceled bool

	msg string // redacted description of Err
}

func (e *NetError) Error() string {
	var b strings.Builder
	errorPrefix(&b, e.Op, e.Method, e.URL)
	b.WriteString(e.msg)
	return b.String()
}

func (e *NetError) Unwrap() error { return e.Err }

// errAttemptTimeout is the cause of a NetError when one attempt hit the client's own deadline
// (RequestTimeout, a stalled download): a transient failure, not the caller's cancellation.
var errAttemptTimeout = fmt.Errorf("request timed out: %w", context.DeadlineExceeded)

// unknownOutcome marks a 2xx answer that could not be understood: the server did act.
func (e *APIError) unknownOutcome() bool { return e.StatusCode >= 200 && e.StatusCode < 300 }

// IsRetryable reports a transient failure worth retrying later: network errors, timeouts (not the
// caller's own cancel), 408, 429 and 5xx.
func IsRetryable(err error) bool {
	var ne *NetError
	if errors.As(err, &ne) {
		return !ne.Canceled
	}
	var ae *APIError
	if errors.As(err, &ae) {
		s := ae.StatusCode
		return s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500
	}
	return false
}

// IsPermanent reports a 4xx answer other than 408 and 429: retrying the same request will not help.
// Check IsAuth, IsNotFound and IsURLExpired first when they call for a different action.
func IsPermanent(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	s := ae.StatusCode
	return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}

// IsAuth reports 401/403 from the Mosaic API (bad key, missing scope, plan gating). A 403 from a signed
// storage URL is not an auth problem of the key; see IsURLExpired.
func IsAuth(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.storage {
		return false
	}
	return ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// IsConflict reports a 409: the request does not fit the resource's state (resuming a run that
// is not failed or cancelled, cancelling a finished one).
func IsConflict(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusConflict
}

// IsURLExpired reports that a signed upload or download URL was refused as expired; fetch a new one.
func IsURLExpired(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.storage && ae.expired
}

// IsTransfer reports an answer from a signed storage URL (an upload's bytes, a download) rather
// than from the Mosaic API: a 429 or Retry-After there concerns that one transfer, not every call.
func IsTransfer(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.storage
}

// IsCanceled reports that the caller's own context was cancelled (errors.Is(err, context.Canceled)
// holds too). A deadline (the caller's or the client's) is a timeout: IsRetryable, not IsCanceled.
func IsCanceled(err error) bool {
	var ne *NetError
	if errors.As(err, &ne) {
		return ne.Canceled
	}
	return errors.Is(err, context.Canceled)
}

// RetryAfter returns the server's Retry-After hint, if it sent one.
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter, true
	}
	return 0, false
}

// OutcomeUnknown reports, for a failed RunAgent, whether the request may have reached the server and
// created a run: a timeout or reset after the request was written, the caller's cancel after it was
// written, a 5xx, or an unreadable success answer. False means the run was certainly not started
// (failed before sending, or a 4xx including 429).
func OutcomeUnknown(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.unknownOutcome()
	}
	var ne *NetError
	if errors.As(err, &ne) {
		return ne.Sent
	}
	return false
}

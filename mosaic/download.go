package mosaic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DownloadOptions tunes Download.
type DownloadOptions struct {
	Offset   int64                   // resume: bytes already held by the caller; sends Range: bytes=Offset-
	Progress func(done, total int64) // done/total include Offset; total is -1 while unknown
}

const (
	downloadBuffer     = 1 << 20 // recycled through downloadBuffers
	maxProgressResumes = 1000    // resumes that each made progress; a bound for a pathological server
)

// downloadState is what survives between attempts of one Download.
type downloadState struct {
	url      string
	offset   int64 // bytes the caller holds (Offset + written)
	total    int64 // full object size, -1 while unknown
	buf      []byte
	progress func(done, total int64)
}

// downloadBuffers recycles the copy buffers (see uploadReaders).
var downloadBuffers = sync.Pool{New: func() any { b := make([]byte, downloadBuffer); return &b }}

// Download GETs a signed URL (no Authorization header) into w, resuming with Range after a dropped
// connection (retries), verifying the byte count against Content-Length / Content-Range.
// Returns bytes written to w by this call. Expired URL => error with IsURLExpired(err) == true.
func (c *Client) Download(ctx context.Context, rawURL string, w io.Writer, opts DownloadOptions) (int64, error) {
	if opts.Offset < 0 {
		return 0, errors.New("mosaic: download: negative offset")
	}
	buf := downloadBuffers.Get().(*[]byte)
	defer downloadBuffers.Put(buf)
	st := &downloadState{url: rawURL, offset: opts.Offset, total: -1, buf: *buf, progress: opts.Progress}
	var written int64
	failures, resumes := 0, 0
	for {
		n, err := c.downloadAttempt(ctx, w, st)
		written += n
		if err == nil {
			if failures+resumes > 0 {
				c.log.Info("mosaic: download succeeded after retries", "url", RedactURL(rawURL), "retries", failures+resumes)
			}
			return written, nil
		}
		if !IsRetryable(err) || ctx.Err() != nil || c.maxRetries == 0 {
			return written, err
		}
		if n > 0 {
			failures = 0 // progress: a fresh budget for the next stretch
			resumes++
		} else {
			failures++
		}
		if failures > c.maxRetries || resumes > maxProgressResumes {
			return written, err
		}
		delay := c.retryDelay(max(failures, 1), err)
		c.log.Debug("mosaic: download interrupted; resuming", "url", RedactURL(rawURL), "offset", st.offset,
			"delay", delay, "err", err.Error())
		if werr := sleepCtx(ctx, delay); werr != nil {
			return written, c.ctxError(ctx, "download", http.MethodGet, rawURL, ctx.Err())
		}
	}
}

// downloadAttempt performs one GET from st.offset and copies the body into w. It returns the bytes
// written by this attempt and nil once the whole object is held.
func (c *Client) downloadAttempt(ctx context.Context, w io.Writer, st *downloadState) (int64, error) {
	const op = "download"
	if err := ctx.Err(); err != nil {
		return 0, c.ctxError(ctx, op, http.MethodGet, st.url, err)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A stalled transfer (no byte for RequestTimeout) is cancelled and resumed, not waited on forever.
	stall := time.AfterFunc(c.requestTimeout, cancel)
	defer stall.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, st.url, nil)
	if err != nil {
		return 0, fmt.Errorf("mosaic: download: bad URL %s: %s", RedactURL(st.url), c.redact.Load().text(err.Error()))
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept-Encoding", "identity") // byte counts and ranges refer to the stored object
	if st.offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(st.offset, 10)+"-")
	}
	resp, err := c.do(op, req)
	if err != nil {
		return 0, c.netError(ctx, op, req, err, true)
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 {
			st.total = resp.ContentLength
		}
		if st.total >= 0 && st.offset > st.total {
			return 0, fmt.Errorf("mosaic: download %s: caller holds %d bytes but the object has %d",
				RedactURL(st.url), st.offset, st.total)
		}
		if st.offset > 0 { // server ignored Range: skip what the caller already has
			if _, err := io.CopyN(io.Discard, resp.Body, st.offset); err != nil {
				return 0, c.netError(ctx, op, req, err, true)
			}
		}
	case http.StatusPartialContent:
		start, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start < 0 || start > st.offset {
			return 0, &APIError{Op: op, Method: req.Method, URL: RedactURL(st.url), StatusCode: resp.StatusCode,
				storage: true, Detail: "unusable Content-Range " + strconv.Quote(resp.Header.Get("Content-Range"))}
		}
		if total >= 0 {
			st.total = total
		}
		if skip := st.offset - start; skip > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, skip); err != nil {
				return 0, c.netError(ctx, op, req, err, true)
			}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		_, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && total == st.offset {
			st.total = total
			c.reportProgress(st)
			return 0, nil // the caller already holds everything
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return 0, c.newAPIError(op, req, resp, data, true)
	default:
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return 0, c.newAPIError(op, req, resp, data, true)
	}
	if st.total >= 0 && st.offset > st.total {
		return 0, fmt.Errorf("mosaic: download %s: caller holds %d bytes but the object has %d",
			RedactURL(st.url), st.offset, st.total)
	}
	c.reportProgress(st)

	var n int64
	for {
		nr, rerr := resp.Body.Read(st.buf)
		if nr > 0 {
			stall.Reset(c.requestTimeout)
			nw, werr := w.Write(st.buf[:nr])
			n += int64(nw)
			st.offset += int64(nw)
			c.reportProgress(st)
			if werr == nil && nw < nr {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return n, fmt.Errorf("mosaic: download %s: write: %w", RedactURL(st.url), werr)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, c.netError(ctx, op, req, rerr, true)
		}
	}
	if st.total >= 0 && st.offset != st.total {
		// A clean EOF before the announced size (or after it): treat as a dropped connection.
		return n, &NetError{Op: op, Method: req.Method, URL: RedactURL(st.url), Sent: true, Err: io.ErrUnexpectedEOF,
			msg: fmt.Sprintf("body ended at %d of %d bytes", st.offset, st.total)}
	}
	return n, nil
}

func (c *Client) reportProgress(st *downloadState) {
	if st.progress != nil {
		st.progress(st.offset, st.total)
	}
}

// parseContentRange reads "bytes START-END/TOTAL", "bytes START-END/*" or "bytes */TOTAL";
// unknown parts are -1.
func parseContentRange(v string) (start, end, total int64, ok bool) {
	v = strings.TrimSpace(v)
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	total = -1
	if tot != "*" {
		t, err := strconv.ParseInt(strings.TrimSpace(tot), 10, 64)
		if err != nil || t < 0 {
			return 0, 0, 0, false
		}
		total = t
	}
	if rng == "*" {
		return -1, -1, total, true
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	s, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	e, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || s < 0 || e < s {
		return 0, 0, 0, false
	}
	return s, e, total, true
}

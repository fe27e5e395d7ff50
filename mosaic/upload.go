package mosaic

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
)

// UploadFile is the file to upload.
type UploadFile struct {
	Name        string    // file name for the multipart "file" part
	ContentType string    // "" => ContentTypeFor(Name)
	Size        int64     // exact; Content-Length is computed up front from fields + Size
	Body        io.Reader // read exactly once, streamed; fewer than Size bytes => error; never buffered whole
}

// ErrShortBody means UploadFile.Body ended before UploadFile.Size bytes (the file shrank or was
// truncated); nothing incomplete is accepted by storage because Content-Length was promised.
var ErrShortBody = errors.New("file body ended before its declared size")

const uploadReadBuffer = 1 << 20 // large reads from disk; the transport takes them in socket-sized pieces

// uploadReaders recycles the 1 MiB read buffers: a burst of small files would otherwise allocate
// (and clear) one per upload.
var uploadReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, uploadReadBuffer) }}

// Upload POSTs multipart/form-data to t.URL: all t.Fields first, the "file" part last. No Authorization
// header. Exact Content-Length, no chunked encoding. Accepts 200/201/204. Single attempt (no retry).
// progress (may be nil) gets file bytes handed to the connection and f.Size.
func (c *Client) Upload(ctx context.Context, t *UploadTarget, f UploadFile, progress func(sent, total int64)) error {
	const op = "upload"
	if t == nil || t.URL == "" {
		return errors.New("mosaic: upload: no upload target")
	}
	if f.Body == nil || f.Size < 0 {
		return errors.New("mosaic: upload: no file body or negative size")
	}
	if t.MaxFileSize > 0 && f.Size > t.MaxFileSize {
		return &APIError{Op: op, Method: http.MethodPost, URL: RedactURL(t.URL), StatusCode: http.StatusRequestEntityTooLarge,
			Code: "EntityTooLarge", storage: true,
			Detail: fmt.Sprintf("file is %d bytes, the upload target allows %d (checked before sending)", f.Size, t.MaxFileSize)}
	}
	if err := ctx.Err(); err != nil {
		return c.ctxError(ctx, op, http.MethodPost, t.URL, err)
	}
	prefix, trailer, formType, err := multipartFrame(t.Fields, f.Name, f.ContentType)
	if err != nil {
		return fmt.Errorf("mosaic: upload: %w", err)
	}
	file := uploadReaders.Get().(*bufio.Reader)
	file.Reset(f.Body)
	body := &uploadBody{
		ctx:      ctx,
		prefix:   prefix,
		file:     file,
		left:     f.Size,
		size:     f.Size,
		trailer:  trailer,
		progress: progress,
	}
	defer func() {
		body.close() // the transport may read the body after Do returns; stop that here
		file.Reset(nil)
		uploadReaders.Put(file) // safe: a closed body never reads again
	}()

	var sent atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) },
	})
	req, err := http.NewRequestWithContext(tctx, http.MethodPost, t.URL, body)
	if err != nil {
		return fmt.Errorf("mosaic: upload: build request for %s: %s", RedactURL(t.URL), c.redact.Load().text(err.Error()))
	}
	req.ContentLength = multipartLength(prefix, trailer, f.Size)
	req.GetBody = nil // one shot: the file is read once
	req.Header.Set("Content-Type", formType)
	req.Header.Set("User-Agent", c.userAgent)
	if progress != nil {
		progress(0, f.Size)
	}

	resp, err := c.do(op, req)
	if err != nil {
		if berr := body.readErr(); berr != nil && ctx.Err() == nil {
			return fmt.Errorf("mosaic: upload %s: %w", f.Name, berr)
		}
		return c.netError(ctx, op, req, err, sent.Load())
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		if berr := body.readErr(); berr != nil {
			// Cannot normally happen (Content-Length forbids it), but never report a short file as done.
			return fmt.Errorf("mosaic: upload %s: %w", f.Name, berr)
		}
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return c.newAPIError(op, req, resp, data, true)
}

// uploadBody streams prefix, exactly size bytes of file, then trailer. It checks ctx between reads
// and fails on a short file instead of sending fewer bytes than promised.
type uploadBody struct {
	ctx      context.Context
	prefix   []byte
	file     io.Reader
	left     int64
	size     int64
	trailer  []byte
	progress func(sent, total int64)

	mu     sync.Mutex
	closed bool
	err    error
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("upload finished")
	}
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	if b.left > 0 {
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err := b.file.Read(p)
		b.left -= int64(n)
		if n > 0 && b.progress != nil {
			b.progress(b.size-b.left, b.size)
		}
		switch {
		case err == io.EOF && b.left > 0:
			b.err = fmt.Errorf("%w: got %d of %d bytes", ErrShortBody, b.size-b.left, b.size)
		case err != nil && err != io.EOF:
			b.err = fmt.Errorf("read file: %w", err)
		}
		if n > 0 {
			return n, nil
		}
		if b.err != nil {
			return 0, b.err
		}
		if b.left > 0 {
			return 0, nil
		}
	}
	if len(b.trailer) > 0 {
		n := copy(p, b.trailer)
		b.trailer = b.trailer[n:]
		return n, nil
	}
	return 0, io.EOF
}

func (b *uploadBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *uploadBody) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// Close lets the transport close the body; the caller's reader is not ours to close.
func (b *uploadBody) Close() error { return nil }

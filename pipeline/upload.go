package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"path"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// stepHash takes the content hash that identifies the file, and recognises content that was
// already processed in this folder (a renamed or moved file) so it is not run again.
func (p *Pipeline) stepHash(ctx context.Context, j *store.Job) error {
	f, err := p.folderOf(j)
	if err != nil {
		return err
	}
	if err := p.folderReady(f); err != nil {
		return err
	}
	if j.CopyOf != 0 && j.ContentHash != "" {
		// Hashed already: waiting for the job with the same content.
		if err := p.followOriginal(ctx, f, j); err != nil || j.CopyOf != 0 {
			return err
		}
		j.Step = store.StepSettled
		return p.commit(ctx, j, "the job with the same content did not finish as a reusable run; processing this file on its own")
	}
	if j.Size == 0 {
		return permanent("the file is empty", nil)
	}
	if f.MaxFileSize > 0 && j.Size > f.MaxFileSize {
		return permanent(fmt.Sprintf("the file is %s, larger than this folder's limit of %s", FormatBytes(j.Size), FormatBytes(f.MaxFileSize)), nil)
	}
	file, _, err := p.openSource(f, j)
	if err != nil {
		return err
	}
	defer file.Close()
	head := make([]byte, 64)
	n, _ := io.ReadFull(file, head)
	if kind := sniffContainer(head[:n]); kind == "" {
		return permanent("not a video: the content matches none of MP4, MOV, MKV, WebM or AVI", nil)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return transient("read source", err)
	}
	h := sha256.New()
	pr := &progressReader{r: file, total: j.Size, report: func(done, total int64) {
		p.setProgress(j.ID, Progress{Phase: "hashing", Done: done, Total: total})
	}}
	if _, err := io.Copy(h, ctxReader{ctx, pr}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return transient("hash source", err)
	}
	if err := p.recheckSource(f, j, file); err != nil {
		return err
	}
	j.ContentHash = hex.EncodeToString(h.Sum(nil))
	// Content already processed (or being processed) in this folder is not run again.
	if err := p.matchContent(ctx, f, j); err != nil || j.CopyOf != 0 {
		return err
	}
	j.Step = store.StepSettled
	j.Attempts = 0
	return p.commit(ctx, j, "hashed "+j.ContentHash[:12])
}

// stepUpload uploads and finalizes. The bytes sent are hashed on the way and must match the
// hash taken before: a file that changed during the upload is abandoned.
func (p *Pipeline) stepUpload(ctx context.Context, j *store.Job) error {
	if j.Step == store.StepUploaded {
		return p.stepFinalize(ctx, j)
	}
	f, err := p.folderOf(j)
	if err != nil {
		return err
	}
	if err := p.folderReady(f); err != nil {
		return err
	}
	file, _, err := p.openSource(f, j)
	if err != nil {
		return err
	}
	defer file.Close()

	req := mosaic.UploadRequest{
		API:         p.opts.UploadAPI,
		Filename:    path.Base(j.RelPath),
		ContentType: mosaic.ContentTypeFor(j.RelPath),
		FileSize:    j.Size,
	}
	if req.API == mosaic.VideosAPI {
		meta := probeVideo(file, j.Size)
		req.Width, req.Height, req.DurationMS = meta.Width, meta.Height, meta.DurationMS
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return transient("read source", err)
		}
	}
	target, err := p.api.GetUploadURL(ctx, req)
	if err != nil {
		return err
	}
	if target.MaxFileSize > 0 && j.Size > target.MaxFileSize {
		return permanent(fmt.Sprintf("the file is %s, larger than Mosaic's limit of %s", FormatBytes(j.Size), FormatBytes(target.MaxFileSize)), nil)
	}
	h := sha256.New()
	body := io.TeeReader(file, h)
	p.log.Info("uploading", "job", j.ID, "path", j.RelPath, "size", j.Size, "video", target.VideoID)
	err = p.api.Upload(ctx, target, mosaic.UploadFile{
		Name: path.Base(j.RelPath), ContentType: req.ContentType, Size: j.Size, Body: body,
	}, func(sent, total int64) {
		p.setProgress(j.ID, Progress{Phase: "uploading", Done: sent, Total: total})
	})
	if err != nil {
		if serr := p.recheckSource(f, j, file); serr != nil {
			return serr
		}
		return err
	}
	if err := p.recheckSource(f, j, file); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != j.ContentHash {
		return skip("the source file changed during the upload; the new version is handled as a new job once it settles")
	}
	p.opts.Observer.Transferred(f.Name, "upload", j.Size)
	j.Step = store.StepUploaded
	j.UploadAPI = string(target.API)
	j.VideoID = target.VideoID
	j.Attempts = 0
	if err := p.commit(ctx, j, "uploaded as video "+target.VideoID); err != nil {
		return err
	}
	return p.stepFinalize(ctx, j)
}

func (p *Pipeline) stepFinalize(ctx context.Context, j *store.Job) error {
	err := p.api.FinalizeUpload(ctx, mosaic.UploadAPI(j.UploadAPI), j.VideoID)
	if mosaic.IsNotFound(err) {
		// The upload expired or was never recorded: upload again.
		j.Step = store.StepSettled
		j.VideoID = ""
		return p.commit(ctx, j, "Mosaic no longer knows the upload; uploading again")
	}
	if err != nil {
		return err
	}
	j.Step = store.StepFinalized
	j.Attempts = 0
	return p.commit(ctx, j, "upload finalized")
}

type progressReader struct {
	r      io.Reader
	done   int64
	total  int64
	last   time.Time
	report func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) > 200*time.Millisecond || err != nil {
		p.last = now
		p.report(p.done, p.total)
	}
	return n, err
}

// ctxReader stops a long local read (hashing a large file) when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

var _ hash.Hash = sha256.New()

// FormatBytes writes a byte count for people: 512 B, 1.5 MiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// moveFile moves src to dst, creating dst's folder. Across filesystems it copies, syncs and
// only then removes the source. An existing dst is never overwritten.
func moveFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s already exists", dst)
	}
	err := os.Rename(src, dst)
	if err == nil || !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := tempName(dst)
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(src)
}

// cleanStaleTemps removes temporary download files that no open job will resume: leftovers of
// a crash between reserving a name and recording it.
func (p *Pipeline) cleanStaleTemps(ctx context.Context) {
	keep := make(map[string]bool)
	jobs, err := p.st.OpenAtStep(ctx, store.StepRunFinished)
	if err != nil {
		p.log.Warn("list jobs with downloads", "err", err)
		return
	}
	// Jobs that failed or wait for a person while downloading resume their files on retry.
	stuck, err := p.st.List(ctx, store.Filter{Status: []store.Status{store.StatusFailed, store.StatusAttention}, Limit: 100000})
	if err != nil {
		p.log.Warn("list jobs with downloads", "err", err)
		return
	}
	for _, j := range stuck {
		if j.Step == store.StepRunFinished {
			jobs = append(jobs, j)
		}
	}
	folders := p.allFolders()
	for _, j := range jobs {
		f, ok := folders[j.Folder]
		if !ok {
			continue
		}
		for _, o := range j.Outputs {
			if o.Path != "" && !o.Written {
				keep[tempName(filepath.Join(f.Output, filepath.FromSlash(o.Path)))] = true
			}
		}
	}
	for _, f := range folders {
		_ = filepath.WalkDir(f.Output, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), tempSuffix) || keep[path] {
				return nil
			}
			if err := os.Remove(path); err == nil {
				p.log.Info("removed a stale temporary file", "path", path)
			}
			return nil
		})
	}
}

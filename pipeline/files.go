package pipeline

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// staleTempAge is how old a temporary file must be before a daemon sharing its store removes
// it: another host may have reserved the name a moment ago and not recorded it yet.
const staleTempAge = time.Hour

// cleanStaleTemps removes temporary files that no job will resume: downloads left by a crash
// between reserving a name and recording it, and copies of an interrupted cross-device move.
// Output and move_to folders are walked through their roots, so a planted link never leads
// the cleanup elsewhere; a folder that is away is left alone.
func (p *Pipeline) cleanStaleTemps(ctx context.Context) {
	keep := make(map[string]bool) // absolute paths of temporary files a job resumes
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
	written := make(map[string]bool) // outputs and move_to folders: where temporary files are ours
	for _, f := range folders {
		for _, fp := range p.placesOf(f)[1:] {
			written[fp.pl.path] = true
		}
	}
	for path := range written {
		p.cleanTempsIn(p.place(path), keep)
	}
}

func (p *Pipeline) cleanTempsIn(pl *place, keep map[string]bool) {
	root, err := pl.open("folder")
	if err != nil {
		return
	}
	defer root.Close()
	_ = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), tempSuffix) {
			return nil
		}
		abs := filepath.Join(pl.path, filepath.FromSlash(rel))
		if keep[abs] {
			return nil
		}
		if p.opts.Shared {
			if fi, err := d.Info(); err != nil || p.now().Sub(fi.ModTime()) < staleTempAge {
				return nil
			}
		}
		if err := root.Remove(filepath.FromSlash(rel)); err == nil || os.IsNotExist(err) {
			p.log.Info("removed a stale temporary file", "path", abs)
		}
		return nil
	})
}

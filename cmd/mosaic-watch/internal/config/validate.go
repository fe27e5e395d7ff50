package config

// Validation of the assembled configuration as a whole: the API key, each folder, and layouts
// in which the daemon would pick up its own files.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"unicode"
)

var uuidRe = regexp.MustCompile(
	`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (l *loader) validate() {
	l.validateAPIKey()
	l.validateDatabase()
	if len(l.folders) == 0 && !l.hasProblemAt("folders") {
		l.problem("folders", l.foldersLine, "at least one folder is required")
	}
	for i := range l.folders {
		l.validateFolder(&l.folders[i])
	}
	l.validateOverlaps()
	l.validateLoops()
	l.validateWebhook()
	for _, src := range l.folders {
		src.f.at, src.f.src = src.set, location{src.path, src.line}
		l.cfg.Folders = append(l.cfg.Folders, src.f)
	}
}

// validateWebhook: without a secret the webhook route is off, and without http.listen nothing
// answers; runs are then started without the callback URL.
func (l *loader) validateWebhook() {
	c := l.cfg
	switch {
	case c.WebhookPublicURL == "":
	case c.WebhookSecret == "":
		l.warn("webhook.public_url", l.publicURLLine, "is set but webhook.secret is not: the "+
			"webhook route stays off (404) and runs are followed by polling only; set "+
			"webhook.secret to the secret configured in Mosaic")
	case c.HTTPListen == "":
		l.warn("webhook.public_url", l.publicURLLine, "is set but http.listen is not set, so "+
			"nothing answers the webhooks: runs are followed by polling only")
	}
}

func (l *loader) hasProblemAt(path string) bool {
	for _, p := range l.problems {
		if p.Path == path {
			return true
		}
	}
	return false
}

func (l *loader) validateAPIKey() {
	c := l.cfg
	switch {
	case l.apiKey != nil && l.apiKeyFile != nil:
		l.problem(l.apiKeyFile.path, l.apiKeyFile.line,
			"set either mosaic.api_key or mosaic.api_key_file, not both")
		return
	case l.apiKey == nil && l.apiKeyFile == nil:
		l.problem("mosaic.api_key", l.mosaicLine,
			"missing; set api_key: ${MOSAIC_API_KEY} or api_key_file")
		return
	case l.apiKeyFile != nil:
		if l.apiKeyFileAt == "" {
			return // already reported
		}
		at := *l.apiKeyFile
		fi, err := os.Stat(l.apiKeyFileAt)
		if err == nil && !fi.Mode().IsRegular() {
			l.problem(at.path, at.line, "%s is not a regular file", l.apiKeyFileAt)
			return
		}
		data, err := os.ReadFile(l.apiKeyFileAt)
		if err != nil {
			l.problem(at.path, at.line, "cannot read %s: %s", l.apiKeyFileAt, errText(err))
			return
		}
		c.APIKey = strings.TrimSpace(string(data))
		if c.APIKey == "" {
			l.problem(at.path, at.line, "%s is empty", l.apiKeyFileAt)
			return
		}
		if fi != nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
			l.warn(at.path, at.line, "key file %s can be read by other users (mode %#o); run: chmod 600 %s",
				l.apiKeyFileAt, fi.Mode().Perm(), l.apiKeyFileAt)
		}
	default:
		if c.APIKey == "" {
			return // already reported
		}
		at := *l.apiKey
		if !l.apiKeyFromEnv && runtime.GOOS != "windows" && l.fileMode&0o077 != 0 {
			l.warn(at.path, at.line, "the API key is written in this file, which other users can read "+
				"(mode %#o); run: chmod 600 %s, or use api_key: ${MOSAIC_API_KEY} or api_key_file",
				l.fileMode, l.file)
		}
	}
	if !strings.HasPrefix(c.APIKey, "mk_") {
		at := l.apiKey
		if at == nil {
			at = l.apiKeyFile
		}
		l.warn(at.path, at.line, "the API key does not start with mk_; is it a Mosaic API key?")
	}
}

func (l *loader) validateFolder(src *folderSource) {
	f := &src.f
	p := src.path
	if _, ok := src.set["input"]; !ok {
		l.problem(p+".input", src.line, "missing; set the folder to watch")
	} else if f.Input != "" {
		at := src.where("input")
		fi, err := os.Stat(f.Input)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			l.problem(at.path, at.line, "input folder %s does not exist; create it or fix the path", f.Input)
		case err != nil:
			l.problem(at.path, at.line, "cannot access input folder %s: %s", f.Input, errText(err))
		case !fi.IsDir():
			l.problem(at.path, at.line, "%s is not a folder", f.Input)
		}
		if f.Name == "" {
			f.Name = filepath.Base(f.Input)
		}
	}
	if _, ok := src.set["output"]; !ok {
		l.problem(p+".output", src.line, "missing; set the folder where the agent's outputs are written")
	} else if f.Output != "" {
		if fi, err := os.Stat(f.Output); err == nil && !fi.IsDir() {
			at := src.where("output")
			l.problem(at.path, at.line, "%s exists and is not a folder", f.Output)
		}
	}
	if _, ok := src.set["agent_id"]; !ok {
		l.problem(p+".agent_id", src.line,
			"missing; set the Mosaic agent ID (from the agent's page on the Mosaic dashboard)")
	} else if f.AgentID != "" {
		at := src.where("agent_id")
		if strings.ContainsFunc(f.AgentID, unicode.IsSpace) || strings.Contains(f.AgentID, "/") {
			l.problem(at.path, at.line, "agent ID %q must not contain spaces or '/'", f.AgentID)
		} else if !uuidRe.MatchString(f.AgentID) {
			l.warn(at.path, at.line,
				"agent ID %q does not look like a UUID (123e4567-e89b-12d3-a456-789012345678)", f.AgentID)
		}
	}
	l.validateDisposition(src, "after_success", f.AfterSuccess, &f.AfterSuccessMoveTo)
	l.validateDisposition(src, "after_failure", f.AfterFailure, &f.AfterFailureMoveTo)
}

func (l *loader) validateDisposition(src *folderSource, key string, action Disposition,
	moveTo *string) {
	mk := key + "_move_to"
	_, moveSet := src.set[mk]
	if action != Move {
		if *moveTo != "" && src.own[mk] {
			at := src.where(mk)
			l.warn(at.path, at.line, "ignored because %s is %s (not move)", key, action)
		}
		*moveTo = ""
		return
	}
	if !moveSet {
		at := src.where(key)
		l.problem(src.path+"."+mk, at.line,
			"required when %s is move (set the folder to move the source videos to)", key)
		return
	}
	if *moveTo == "" {
		return // already reported
	}
	if fi, err := os.Stat(*moveTo); err == nil && !fi.IsDir() {
		at := src.where(mk)
		l.problem(at.path, at.line, "%s exists and is not a folder", *moveTo)
	}
}

// validateOverlaps refuses layouts where the daemon would pick up its own files: outputs, move
// targets or the state directory inside an input, and the same input watched twice.
func (l *loader) validateOverlaps() {
	for i := range l.folders {
		a := &l.folders[i]
		fa := a.f
		if fa.Input == "" {
			continue
		}
		if fa.Output != "" {
			at := a.where("output")
			switch {
			case samePath(fa.Output, fa.Input):
				l.problem(at.path, at.line, "output folder is the same as the input folder %s; "+
					"outputs would be picked up again as new videos", fa.Input)
			case inside(fa.Output, fa.Input):
				l.problem(at.path, at.line, "output folder %s is inside the input folder %s; outputs "+
					"would be picked up again as new videos, use a folder outside the input",
					fa.Output, fa.Input)
			case inside(fa.Input, fa.Output):
				l.problem(at.path, at.line,
					"input folder %s is inside the output folder %s; use separate folders", fa.Input, fa.Output)
			}
		}
		for j := range l.folders {
			fb := l.folders[j].f
			if fb.Input == "" {
				continue
			}
			for _, mk := range []string{"after_success_move_to", "after_failure_move_to"} {
				dir := fa.AfterSuccessMoveTo
				if mk == "after_failure_move_to" {
					dir = fa.AfterFailureMoveTo
				}
				if dir == "" || !inside(dir, fb.Input) {
					continue
				}
				at := a.where(mk)
				who := "its own input folder"
				if j != i {
					who = fmt.Sprintf("the input folder of %s", l.folders[j].path)
				}
				l.problem(at.path, at.line, "move target %s is inside %s %s; moved videos would be "+
					"picked up again, use a folder outside every input (for %s)", dir, who, fb.Input, a.path)
			}
			if j <= i {
				continue
			}
			b := &l.folders[j]
			at := b.where("input")
			switch {
			case samePath(fb.Input, fa.Input):
				l.problem(at.path, at.line, "same input folder as %s (line %d); "+
					"each folder can be watched by one entry only", a.path, a.where("input").line)
			case inside(fb.Input, fa.Input):
				l.problem(at.path, at.line, "input folder %s is inside %s.input %s; "+
					"videos there would be processed twice", fb.Input, a.path, fa.Input)
			case inside(fa.Input, fb.Input):
				l.problem(at.path, at.line, "input folder %s contains %s.input %s; "+
					"videos there would be processed twice", fb.Input, a.path, fa.Input)
			}
		}
		if inside(l.cfg.StateDir, fa.Input) {
			l.problem("state_dir", l.stateDirLine, "state directory %s is inside the input folder "+
				"of %s (%s); choose a folder outside every input", l.cfg.StateDir, a.path, fa.Input)
		}
		if fa.Name != "" && a.own["name"] {
			for j := i + 1; j < len(l.folders); j++ {
				if b := l.folders[j]; b.own["name"] && b.f.Name == fa.Name {
					at := b.where("name")
					l.problem(at.path, at.line, "name %q is already used by %s", fa.Name, a.path)
				}
			}
		}
	}
}

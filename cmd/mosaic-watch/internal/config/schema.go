package config

// The schema walk: which keys each section accepts and what each key sets.

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/watcher"
	"go.yaml.in/yaml/v3"
)

// Schema: the keys each section accepts. config_test.go checks config.example.yaml against these.
var (
	topKeys = []string{"mosaic", "state_dir", "log", "limits", "shutdown_timeout", "scan_interval",
		"retry", "defaults", "folders", "http", "webhook", "database"}
	mosaicKeys = []string{"base_url", "api_key", "api_key_file", "poll_interval", "reconcile_after",
		"max_retry_after", "upload_api"}
	logKeys    = []string{"level", "format"}
	limitsKeys = []string{"uploads", "active_runs", "downloads", "max_runs_per_day",
		"backlog_confirm_over"}
	retryKeys         = []string{"base", "max", "attempts"}
	httpKeys          = []string{"listen", "token", "allowed_hosts"}
	webhookKeys       = []string{"secret", "public_url"}
	folderSettingKeys = []string{"recursive", "include", "exclude", "settle", "incomplete_after",
		"mode", "poll_interval", "after_success", "after_success_move_to", "after_failure",
		"after_failure_move_to", "existing_files", "limits", "on_source_change"}
	folderLimitsKeys = []string{"max_file_size", "max_runs_per_day"}
	folderOnlyKeys   = []string{"name", "input", "output", "agent_id", "update_params", "ignore_nodes"}
	folderKeys       = append(append([]string{}, folderOnlyKeys...), folderSettingKeys...)

	modes          = []watcher.Mode{watcher.ModeAuto, watcher.ModeEvents, watcher.ModePoll}
	successActions = []Disposition{Keep, Move, Delete}
	failureActions = []Disposition{Keep, Move}
	sourceChanges  = []string{pipeline.SourceChangeFinish, pipeline.SourceChangeCancel}
	existingFiles  = []ExistingFiles{ExistingConfirm, ExistingProcess, ExistingIgnore}
	uploadAPIs     = []mosaic.UploadAPI{mosaic.UploadsAPI, mosaic.VideosAPI}
	logLevels      = []string{"debug", "info", "warn", "error"}
	logFormats     = []string{"text", "json"}
)

func (l *loader) walkTop(root *yaml.Node) {
	c := l.cfg
	var defaults, folders *yaml.Node
	l.mapping(root, "", topKeys, func(key string, k, v *yaml.Node, p string) {
		switch key {
		case "mosaic":
			l.mosaicLine = k.Line
			l.walkMosaic(v, p)
		case "state_dir":
			if s, ok := l.pathValue(v, p); ok {
				c.StateDir, l.stateDirLine = s, v.Line
			}
		case "log":
			l.mapping(v, p, logKeys, func(key string, _, v *yaml.Node, p string) {
				if key == "level" {
					if s, ok := l.enum(v, p, logLevels); ok {
						_ = c.LogLevel.UnmarshalText([]byte(s)) // every allowed name parses
					}
				} else if s, ok := l.enum(v, p, logFormats); ok {
					c.LogFormat = s
				}
			})
		case "limits":
			l.mapping(v, p, limitsKeys, func(key string, _, v *yaml.Node, p string) {
				minimum := 1
				if key == "max_runs_per_day" || key == "backlog_confirm_over" {
					minimum = 0 // no limit; hold every existing file
				}
				n, ok := l.integer(v, p, minimum)
				if !ok {
					return
				}
				switch key {
				case "uploads":
					c.Limits.Uploads = n
				case "active_runs":
					c.Limits.ActiveRuns = n
				case "downloads":
					c.Limits.Downloads = n
				case "max_runs_per_day":
					c.Limits.MaxRunsPerDay = n
				case "backlog_confirm_over":
					c.Limits.BacklogConfirmOver = n
				}
			})
		case "shutdown_timeout":
			if d, ok := l.duration(v, p, minInterval, MaxShutdownTimeout); ok {
				c.ShutdownTimeout = d
			}
		case "scan_interval":
			if d, ok := l.duration(v, p, minInterval, 0); ok {
				c.ScanInterval = d
			}
		case "retry":
			l.walkRetry(v, p)
		case "defaults":
			defaults = v
		case "folders":
			folders, l.foldersLine = v, k.Line
		case "http":
			l.walkHTTP(v, p)
		case "database":
			l.db.line = k.Line
			l.walkDatabase(v, p)
		case "webhook":
			l.mapping(v, p, webhookKeys, func(key string, _, v *yaml.Node, p string) {
				if key == "secret" {
					c.WebhookSecret, _ = l.str(v, p)
				} else if s, ok := l.httpURL(v, p); ok {
					c.WebhookPublicURL, l.publicURLLine = s, v.Line
				}
			})
		}
	})

	tmpl := folderSource{f: defaultFolder(), set: map[string]location{}}
	l.mapping(defaults, "defaults", folderSettingKeys, func(key string, _, v *yaml.Node, p string) {
		l.folderSetting(key, v, p, &tmpl)
	})
	l.walkFolders(folders, tmpl)
}

func (l *loader) walkMosaic(n *yaml.Node, p string) {
	c := l.cfg
	l.mapping(n, p, mosaicKeys, func(key string, _, v *yaml.Node, p string) {
		switch key {
		case "base_url":
			if s, ok := l.httpURL(v, p); ok {
				c.BaseURL = s
			}
		case "api_key":
			l.apiKey = &location{p, v.Line}
			if s, fromEnv, ok := l.scalar(v, p); ok {
				c.APIKey, l.apiKeyFromEnv = strings.TrimSpace(s), fromEnv
				if c.APIKey == "" {
					l.problem(p, v.Line, "is empty")
				}
			}
		case "api_key_file":
			l.apiKeyFile = &location{p, v.Line}
			if s, ok := l.pathValue(v, p); ok {
				l.apiKeyFileAt = s
			}
		case "poll_interval":
			if d, ok := l.duration(v, p, minInterval, 0); ok {
				c.PollInterval = d
			}
		case "reconcile_after":
			if d, ok := l.duration(v, p, minInterval, 0); ok {
				c.ReconcileAfter = d
			}
		case "max_retry_after":
			if d, ok := l.duration(v, p, minInterval, 0); ok {
				c.MaxRetryAfter = d
			}
		case "upload_api":
			if s, ok := enumOf(l, v, p, uploadAPIs); ok {
				c.UploadAPI = s
			}
		}
	})
}

func (l *loader) walkRetry(n *yaml.Node, p string) {
	r := &l.cfg.Retry
	var maxLine int
	l.mapping(n, p, retryKeys, func(key string, _, v *yaml.Node, p string) {
		switch key {
		case "base": // no floor: tests retry within milliseconds
			if d, ok := l.duration(v, p, 0, 0); ok {
				r.Base = d
			}
		case "max":
			if d, ok := l.duration(v, p, 0, 0); ok {
				r.Max, maxLine = d, v.Line
			}
		case "attempts":
			if n, ok := l.integer(v, p, 1); ok {
				r.Attempts = n
			}
		}
	})
	if r.Max < r.Base {
		l.problem(p+".max", maxLine, "must not be shorter than retry.base (%s)", r.Base)
	}
}

func (l *loader) walkHTTP(n *yaml.Node, p string) {
	c := l.cfg
	openPath, openLine := "", 0 // a non-loopback listen address, checked once the token is known
	defer func() {
		if openPath != "" && c.HTTPToken == "" {
			l.problem(openPath, openLine, "listening on a non-loopback address exposes the status API "+
				"to the network: set http.token, or listen on 127.0.0.1")
		}
	}()
	l.mapping(n, p, httpKeys, func(key string, _, v *yaml.Node, p string) {
		if key == "allowed_hosts" {
			c.HTTPAllowedHosts = l.hostNames(v, p)
			return
		}
		s, ok := l.str(v, p)
		if !ok {
			return
		}
		if key == "token" {
			c.HTTPToken = s
			return
		}
		host, port, err := net.SplitHostPort(strings.TrimSpace(s))
		if err != nil || port == "" {
			l.problem(p, v.Line, "expected host:port like 127.0.0.1:8787, got %q", s)
			return
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			l.problem(p, v.Line, "invalid port %q", port)
			return
		}
		c.HTTPListen = strings.TrimSpace(s)
		if !loopbackHost(host) {
			openPath, openLine = p, v.Line
		}
	})
}

// hostNames reads http.allowed_hosts: host names or addresses as a browser puts them in the
// Host header, without scheme, port or path; lower-cased.
func (l *loader) hostNames(n *yaml.Node, p string) []string {
	list, ok := l.strList(n, p)
	if !ok {
		return nil
	}
	if len(list) == 0 {
		l.problem(p, deref(n).Line, "an empty list accepts no host name; remove the key to accept "+
			"only localhost and loopback addresses (or, on a non-loopback listen address, any name)")
		return nil
	}
	out := make([]string, 0, len(list))
	for i, raw := range list {
		h := strings.ToLower(strings.TrimSpace(raw))
		ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
		switch {
		case ip != nil:
			h = ip.String()
		case strings.Contains(h, "://") || strings.Contains(h, "/"):
			l.problem(fmt.Sprintf("%s[%d]", p, i), deref(n.Content[i]).Line,
				"expected a host name like watch.example.com, not a URL: %q", raw)
			continue
		case strings.Contains(h, ":"):
			l.problem(fmt.Sprintf("%s[%d]", p, i), deref(n.Content[i]).Line,
				"give the host name without the port (any port is accepted): %q", raw)
			continue
		case !validHostName(h):
			l.problem(fmt.Sprintf("%s[%d]", p, i), deref(n.Content[i]).Line,
				"%q is not a host name (letters, digits, '-' and '.'; no wildcards)", raw)
			continue
		}
		out = append(out, h)
	}
	return out
}

// validHostName: dot-separated labels of letters, digits and '-', not starting or ending
// with '-'.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// loopbackHost reports whether a listen host only accepts connections from this machine
// ("" and unspecified addresses listen on every interface).
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// folderSetting applies one key that both defaults: and a folder entry accept.
func (l *loader) folderSetting(key string, v *yaml.Node, p string, src *folderSource) {
	f := &src.f
	src.set[key] = location{p, v.Line}
	if src.own != nil {
		src.own[key] = true
	}
	switch key {
	case "recursive":
		if b, ok := l.boolean(v, p); ok {
			f.Recursive = b
		}
	case "include":
		if list, ok := l.globs(v, p); ok {
			if len(list) == 0 {
				l.problem(p, v.Line, "an empty include list matches no file; "+
					"remove the key to use the default video patterns")
				return
			}
			f.Include = list
		}
	case "exclude":
		if list, ok := l.globs(v, p); ok {
			f.Exclude = list
		}
	case "settle":
		if d, ok := l.duration(v, p, minInterval, 0); ok {
			f.Settle = d
		}
	case "incomplete_after":
		if d, ok := l.duration(v, p, minInterval, 0); ok {
			f.IncompleteAfter = d
		}
	case "mode":
		if s, ok := enumOf(l, v, p, modes); ok {
			f.Mode = s
		}
	case "poll_interval":
		if d, ok := l.duration(v, p, minInterval, 0); ok {
			f.PollInterval = d
		}
	case "after_success":
		if s, ok := enumOf(l, v, p, successActions); ok {
			f.AfterSuccess = s
		}
	case "after_success_move_to":
		if s, ok := l.pathValue(v, p); ok {
			f.AfterSuccessMoveTo = s
		}
	case "after_failure":
		if s, ok := enumOf(l, v, p, failureActions); ok {
			f.AfterFailure = s
		}
	case "after_failure_move_to":
		if s, ok := l.pathValue(v, p); ok {
			f.AfterFailureMoveTo = s
		}
	case "on_source_change":
		if s, ok := l.enum(v, p, sourceChanges); ok {
			f.OnSourceChange = s
		}
	case "existing_files":
		if s, ok := enumOf(l, v, p, existingFiles); ok {
			f.ExistingFiles = s
		}
	case "limits":
		l.mapping(v, p, folderLimitsKeys, func(key string, _, v *yaml.Node, p string) {
			src.set["limits."+key] = location{p, v.Line}
			switch key {
			case "max_file_size":
				if n, ok := l.size(v, p); ok {
					f.MaxFileSize = n
				}
			case "max_runs_per_day":
				if n, ok := l.integer(v, p, 0); ok {
					f.MaxRunsPerDay = n
				}
			}
		})
	}
}

func (l *loader) walkFolders(n *yaml.Node, tmpl folderSource) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.problem("folders", n.Line,
			"expected a list of folders (each entry starts with \"- input: ...\"), got %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		p := fmt.Sprintf("folders[%d]", i)
		item = deref(item)
		src := tmpl.clone()
		src.f.Index, src.line, src.path = i, item.Line, p
		if item.Kind != yaml.MappingNode {
			l.problem(p, item.Line, "expected a folder entry (input:, output:, agent_id: ...), got %s",
				kindName(item))
			continue
		}
		l.mapping(item, p, folderKeys, func(key string, k, v *yaml.Node, kp string) {
			f := &src.f
			switch key {
			case "name":
				if s, ok := l.str(v, kp); ok {
					src.set[key], f.Name = location{kp, v.Line}, strings.TrimSpace(s)
				}
			case "input":
				src.set[key] = location{kp, v.Line}
				f.Input, _ = l.pathValue(v, kp)
			case "output":
				src.set[key] = location{kp, v.Line}
				f.Output, _ = l.pathValue(v, kp)
			case "agent_id":
				src.set[key] = location{kp, v.Line}
				if s, ok := l.str(v, kp); ok {
					f.AgentID = strings.TrimSpace(s)
					if f.AgentID == "" {
						l.problem(kp, v.Line, "must not be empty")
					}
				}
			case "update_params":
				src.set[key] = location{kp, k.Line}
				f.UpdateParams = l.updateParams(v, kp)
			case "ignore_nodes":
				src.set[key] = location{kp, k.Line}
				f.IgnoreNodes, _ = l.strList(v, kp)
			default:
				l.folderSetting(key, v, kp, &src)
			}
		})
		l.folders = append(l.folders, src)
	}
}

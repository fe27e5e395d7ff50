package watcher

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// Mode selects how a root learns about changes.
type Mode string

const (
	ModeAuto   Mode = "auto"   // events on local disks, polling on network/FUSE filesystems
	ModeEvents Mode = "events" // fsnotify events plus the periodic reconcile scan
	ModePoll   Mode = "poll"   // a full scan every PollInterval, no fsnotify
)

// Defaults applied by New when a field is zero.
const (
	DefaultSettle          = 10 * time.Second
	DefaultPollInterval    = 10 * time.Second
	DefaultIncompleteAfter = 30 * time.Minute
	DefaultScanInterval    = time.Hour
	DefaultDegradedRecheck = 5 * time.Second
)

// Root is one watched directory with its own options.
type Root struct {
	Path            string        // absolute directory
	Recursive       bool          // callers set it (config default: true)
	Include         []string      // globs on the slash-separated relative path, "**" allowed; nil => DefaultInclude
	Exclude         []string      // added to DefaultExclude
	Settle          time.Duration // 0 => 10s
	Mode            Mode          // "" => auto
	PollInterval    time.Duration // poll mode scan interval; 0 => 10s
	IncompleteAfter time.Duration // report a never-ready file (no moov, unreadable, zero bytes) after this; 0 => 30m
}

// Options configures a Watcher.
type Options struct {
	Roots           []Root
	ScanInterval    time.Duration // full rescan, jittered ±25%; 0 => 1h
	DegradedRecheck time.Duration // 0 => 5s
	Logger          *slog.Logger
}

// Kind tells what an Event reports.
type Kind int

const (
	Ready Kind = iota + 1
	Vanished
	Incomplete
	Health
)

func (k Kind) String() string {
	switch k {
	case Ready:
		return "ready"
	case Vanished:
		return "vanished"
	case Incomplete:
		return "incomplete"
	case Health:
		return "health"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Event is sent on Watcher.Events.
type Event struct {
	Kind    Kind
	Root    string // Root.Path as given
	Path    string // absolute path
	Rel     string // slash-separated path relative to Root
	Size    int64
	ModTime time.Time
	FileID  string // "dev:ino" on unix, volume+file index on Windows
	Healthy bool   // Health events
	Reason  string // Health (why degraded), Incomplete (why not ready), Vanished (before/after ready)
}

// validate checks o and returns a copy with every default applied.
func (o Options) validate() (Options, error) {
	var errs []error
	if len(o.Roots) == 0 {
		errs = append(errs, errors.New("no roots"))
	}
	if o.ScanInterval < 0 {
		errs = append(errs, fmt.Errorf("scan interval %v is negative", o.ScanInterval))
	}
	if o.DegradedRecheck < 0 {
		errs = append(errs, fmt.Errorf("degraded recheck %v is negative", o.DegradedRecheck))
	}
	out := o
	if out.ScanInterval == 0 {
		out.ScanInterval = DefaultScanInterval
	}
	if out.DegradedRecheck == 0 {
		out.DegradedRecheck = DefaultDegradedRecheck
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	out.Roots = make([]Root, len(o.Roots))
	seen := map[string]bool{}
	for i, r := range o.Roots {
		r, err := r.validate()
		if err != nil {
			errs = append(errs, fmt.Errorf("root %d (%q): %w", i, o.Roots[i].Path, err))
		}
		clean := filepath.Clean(r.Path)
		if seen[clean] {
			errs = append(errs, fmt.Errorf("root %d (%q): listed twice", i, r.Path))
		}
		seen[clean] = true
		out.Roots[i] = r
	}
	if len(errs) > 0 {
		return Options{}, fmt.Errorf("watcher options: %w", errors.Join(errs...))
	}
	return out, nil
}

func (r Root) validate() (Root, error) {
	var errs []error
	if r.Path == "" {
		errs = append(errs, errors.New("path is empty"))
	} else if !filepath.IsAbs(r.Path) {
		errs = append(errs, errors.New("path is not absolute"))
	}
	for name, d := range map[string]time.Duration{
		"settle": r.Settle, "poll interval": r.PollInterval, "incomplete after": r.IncompleteAfter,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", name, d))
		}
	}
	switch r.Mode {
	case "":
		r.Mode = ModeAuto
	case ModeAuto, ModeEvents, ModePoll:
	default:
		errs = append(errs, fmt.Errorf("unknown mode %q (want auto, events or poll)", r.Mode))
	}
	for _, g := range r.Include {
		if err := validGlob(g); err != nil {
			errs = append(errs, fmt.Errorf("include: %w", err))
		}
	}
	for _, g := range r.Exclude {
		if err := validGlob(g); err != nil {
			errs = append(errs, fmt.Errorf("exclude: %w", err))
		}
	}
	if r.Settle == 0 {
		r.Settle = DefaultSettle
	}
	if r.PollInterval == 0 {
		r.PollInterval = DefaultPollInterval
	}
	if r.IncompleteAfter == 0 {
		r.IncompleteAfter = DefaultIncompleteAfter
	}
	return r, errors.Join(errs...)
}

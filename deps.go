//go:build tools

// Package tools pins the project's dependencies while the packages that use
// them are being written, so concurrent work never races on go.mod.
package tools

import (
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/kardianos/service"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sys/unix"
	_ "modernc.org/sqlite"
)

package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// metrics holds the daemon's Prometheus instruments in its own registry. It implements
// pipeline.Observer and provides the mosaic client's OnResponse hook, so it exists before them.
// Label values are folder names and fixed words, never paths, file names or ids: /metrics must
// say nothing a scraper should not see, and every distinct value is a new series.
type metrics struct {
	foldersMu   sync.RWMutex
	folders     map[string]bool // configured folder names (a reload changes them)
	reg         *prometheus.Registry
	transferred *prometheus.CounterVec
	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec
	runDuration *prometheus.HistogramVec
	retries     *prometheus.CounterVec
}

func newMetrics(folderNames []string) *metrics {
	m := &metrics{
		folders: make(map[string]bool, len(folderNames)),
		reg:     prometheus.NewRegistry(),
		transferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_watch_transferred_bytes_total",
			Help: "Bytes uploaded to and downloaded from Mosaic, by folder and direction (upload|download).",
		}, []string{"folder", "direction"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_watch_api_requests_total",
			Help: "HTTP attempts to Mosaic by route and status class (2xx, 4xx, 5xx, error = no response).",
		}, []string{"route", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mosaic_watch_api_request_duration_seconds",
			Help:    "Time until Mosaic's response headers arrived, by route.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10),
		}, []string{"route"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mosaic_watch_run_duration_seconds",
			Help:    "Time from a Mosaic run's start to its terminal status, by folder and status.",
			Buckets: prometheus.ExponentialBuckets(5, 2, 12), // 5 s .. ~3 h
		}, []string{"folder", "status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_watch_retries_total",
			Help: "Transient failures that will be retried, by folder and the step that failed.",
		}, []string{"folder", "step"}),
	}
	for _, n := range folderNames {
		m.folders[n] = true
	}
	m.reg.MustRegister(m.transferred, m.apiRequests, m.apiDuration, m.runDuration, m.retries,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// pipeline.Observer

func (m *metrics) Transferred(folder, direction string, bytes int64) {
	m.transferred.WithLabelValues(m.folder(folder), direction).Add(float64(bytes))
}

func (m *metrics) Retried(folder string, step store.Step) {
	m.retries.WithLabelValues(m.folder(folder), string(step)).Inc()
}

func (m *metrics) RunEnded(folder, status string, took time.Duration) {
	switch status {
	case mosaic.StatusCompleted, mosaic.StatusPartialComplete, mosaic.StatusFailed,
		mosaic.StatusCancelled:
	default:
		status = "other" // whatever else Mosaic may answer one day
	}
	m.runDuration.WithLabelValues(m.folder(folder), status).Observe(took.Seconds())
}

// removedFolder labels the jobs of a folder no longer in the configuration: the pipeline names
// such a folder by its input path.
const removedFolder = "(removed)"

// setFolders changes the configured folder names (a reload).
func (m *metrics) setFolders(names []string) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	m.foldersMu.Lock()
	m.folders = set
	m.foldersMu.Unlock()
}

func (m *metrics) folder(name string) string {
	m.foldersMu.RLock()
	defer m.foldersMu.RUnlock()
	if m.folders[name] {
		return name
	}
	return removedFolder
}

// apiResponse is the mosaic client's OnResponse hook.
func (m *metrics) apiResponse(op string, status int, took time.Duration) {
	route := strings.ReplaceAll(op, " ", "_")
	m.apiRequests.WithLabelValues(route, statusClass(status)).Inc()
	if status != 0 {
		m.apiDuration.WithLabelValues(route).Observe(took.Seconds())
	}
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "error"
	}
	return string(rune('0'+status/100)) + "xx"
}

// stateCollector reads what lives in the database or in memory at scrape time: jobs by state and
// folder, folder health, settle queue length, whether work is paused.
type stateCollector struct {
	d       *Daemon
	jobs    *prometheus.Desc
	healthy *prometheus.Desc
	settle  *prometheus.Desc
	paused  *prometheus.Desc
	credits *prometheus.Desc
	shared  *prometheus.Desc
	runs    *prometheus.Desc
	limit   *prometheus.Desc
	reached *prometheus.Desc
	reload  *prometheus.Desc
}

func newStateCollector(d *Daemon) *stateCollector {
	return &stateCollector{
		d: d,
		jobs: prometheus.NewDesc("mosaic_watch_jobs", "Jobs by folder and state.",
			[]string{"folder", "state"}, nil),
		healthy: prometheus.NewDesc("mosaic_watch_folder_healthy",
			"1 when the folder is usable, 0 when degraded.", []string{"folder"}, nil),
		settle: prometheus.NewDesc("mosaic_watch_settle_queue_length",
			"Files waiting to finish being written.", nil, nil),
		paused: prometheus.NewDesc("mosaic_watch_paused",
			"1 while work is paused (e.g. the API key was rejected).", nil, nil),
		credits: prometheus.NewDesc("mosaic_watch_credits_balance",
			"The Mosaic account's credit balance, as last read (every 5 minutes).", nil, nil),
		shared: prometheus.NewDesc("mosaic_watch_agent_shared",
			"1 when another client also runs the folder's agent: a lost run-start answer then "+
				"waits for a person.", []string{"folder"}, nil),
		runs: prometheus.NewDesc("mosaic_watch_runs_started_24h",
			"Runs started in the last 24 hours, for all folders (scope=\"all\") and per folder.",
			[]string{"scope"}, nil),
		limit: prometheus.NewDesc("mosaic_watch_max_runs_per_day",
			"The daily run limit (limits.max_runs_per_day), when one is set.", []string{"scope"}, nil),
		reached: prometheus.NewDesc("mosaic_watch_run_limit_reached",
			"1 while a daily run limit is reached and run starts wait.", []string{"scope"}, nil),
		reload: prometheus.NewDesc("mosaic_watch_config_reload_failed",
			"1 while the last configuration reload failed (the previous configuration is in effect).",
			nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.healthy
	ch <- c.settle
	ch <- c.paused
	ch <- c.credits
	ch <- c.shared
	ch <- c.runs
	ch <- c.limit
	ch <- c.reached
	ch <- c.reload
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := d.store.CountsByFolder(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.jobs, err)
	} else {
		for _, f := range d.config().Folders {
			for _, st := range jobview.States {
				n := float64(counts[f.Input][st])
				ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, n, f.Name, string(st))
			}
		}
	}
	health := d.folderHealth()
	for _, f := range d.config().Folders {
		v := 1.0
		if health[f.Input] != "" {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, v, f.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.settle, prometheus.GaugeValue, float64(d.watcher.Pending()))
	paused := 0.0
	if d.pipe.Paused() != "" {
		paused = 1
	}
	ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused)
	if rec, err := pipeline.LoadCredits(ctx, d.store); err != nil {
		ch <- prometheus.NewInvalidMetric(c.credits, err)
	} else if rec != nil && !rec.Unlimited {
		ch <- prometheus.MustNewConstMetric(c.credits, prometheus.GaugeValue, rec.Balance)
	}
	for _, f := range d.config().Folders {
		s, err := pipeline.LoadSharedAgent(ctx, d.store, f.AgentID)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.shared, err)
			continue
		}
		v := 0.0
		if s != nil {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.shared, prometheus.GaugeValue, v, f.Name)
	}
	c.collectBudgets(ch)
	failed := 0.0
	if d.ReloadFailure() != "" {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(c.reload, prometheus.GaugeValue, failed)
}

func (c *stateCollector) collectBudgets(ch chan<- prometheus.Metric) {
	global, folders := c.d.pipe.RunBudgets()
	counts := map[string]int{}
	c.d.pipe.RunsByFolder(counts)
	emit := func(scope string, used int, b pipeline.RunBudget) {
		ch <- prometheus.MustNewConstMetric(c.runs, prometheus.GaugeValue, float64(used), scope)
		if b.Limit > 0 {
			ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(b.Limit), scope)
			reached := 0.0
			if b.Reached() {
				reached = 1
			}
			ch <- prometheus.MustNewConstMetric(c.reached, prometheus.GaugeValue, reached, scope)
		}
	}
	emit("all", global.Used, global)
	for _, f := range c.d.config().Folders {
		emit(f.Name, counts[f.Input], folders[f.Input])
	}
}

package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// TestMetricsLabelsAreBounded: the pipeline names the folder of a job whose folder left the
// configuration by its input path, and Mosaic names the run status; neither reaches a label
// as is.
func TestMetricsLabelsAreBounded(t *testing.T) {
	m := newMetrics([]string{"main"})
	const gone = "/srv/video/inbox/old-client"
	m.RunEnded(gone, "completed", time.Minute)
	m.RunEnded("main", "exploded: see /var/log/x", time.Minute)
	m.Retried(gone, store.StepSettled)
	m.Transferred(gone, "download", 10)
	m.Transferred("main", "upload", 10)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	series := map[string]int{}
	for _, f := range families {
		series[f.GetName()] = len(f.GetMetric())
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				v := l.GetValue()
				seen = append(seen, l.GetName()+"="+v)
				if strings.Contains(v, "/") || strings.Contains(v, "exploded") {
					t.Errorf("%s{%s=%q}", f.GetName(), l.GetName(), v)
				}
			}
		}
	}
	for name, want := range map[string]int{"mosaic_watch_run_duration_seconds": 2,
		"mosaic_watch_retries_total": 1, "mosaic_watch_transferred_bytes_total": 2} {
		if series[name] != want {
			t.Errorf("%s: %d series, want %d", name, series[name], want)
		}
	}
	joined := strings.Join(seen, " ")
	for _, want := range []string{"folder=(removed)", "folder=main", "status=other",
		"status=completed"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no label %s among %s", want, joined)
		}
	}
}

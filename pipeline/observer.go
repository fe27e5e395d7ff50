package pipeline

import (
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// Observer receives the pipeline's measurements, for metrics. Calls must be cheap and must
// not block: they run on the pipeline's workers.
type Observer interface {
	// Transferred counts bytes moved: direction is "upload" or "download".
	Transferred(folder, direction string, bytes int64)
	// Retried counts a transient failure that will be retried, by the step that failed.
	Retried(folder string, step store.Step)
	// RunEnded reports a run's terminal status and how long it took from its start.
	RunEnded(folder, status string, took time.Duration)
}

type nopObserver struct{}

func (nopObserver) Transferred(string, string, int64)      {}
func (nopObserver) Retried(string, store.Step)             {}
func (nopObserver) RunEnded(string, string, time.Duration) {}

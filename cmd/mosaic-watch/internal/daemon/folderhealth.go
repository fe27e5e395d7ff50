package daemon

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// folderHealth is why each folder (by input) is degraded; "" or absent = healthy. It joins what
// the watcher sees of the inputs, what the pipeline sees of inputs, outputs and move_to folders
// (missing, not mounted), and the folders another instance serves.
func (d *Daemon) folderHealth() map[string]string {
	d.healthMu.Lock()
	out := maps.Clone(d.health)
	d.healthMu.Unlock()
	maps.DeleteFunc(out, func(_, why string) bool { return why == "" })
	if d.pipe != nil {
		maps.Copy(out, d.pipe.Degraded()) // it names the folder and says what is wrong with it
	}
	d.locksMu.Lock()
	maps.Copy(out, d.refused)
	d.locksMu.Unlock()
	configured := make(map[string]bool)
	for _, f := range d.config().Folders {
		configured[f.Input] = true
	}
	// A folder removed by a reload is not reported, even while its last runs finish.
	maps.DeleteFunc(out, func(input, _ string) bool { return !configured[input] })
	return out
}

// healthMetaKey is where the running daemon leaves its folder health for `status` (per host
// with a shared store: HostMetaKey).
const healthMetaKey = "folder_health"

// HostMetaKey is the meta key of what one daemon records about itself for `status` on its
// host (folder health, a failed reload): key itself with SQLite, and with a store shared by
// several daemons key with the host name and state folder, one daemon's own, so that they do
// not overwrite each other's.
func HostMetaKey(cfg *config.Config, key string) string {
	if !cfg.Database.Shared() {
		return key
	}
	host, _ := os.Hostname()
	return key + ":" + host + ":" + cfg.StateDir
}

// HealthRecord is the folder health the running daemon last recorded in the state database.
type HealthRecord struct {
	At       time.Time         `json:"at"`
	Degraded map[string]string `json:"degraded"` // input -> why
}

// healthRefresh bounds how old a record of an unchanged health gets while the daemon runs.
const healthRefresh = time.Minute

// publishHealth records the folder health whenever it changes (and every healthRefresh), so
// that `status`, another process, can show it; it clears the record when the daemon stops.
func (d *Daemon) publishHealth(ctx context.Context) {
	t := time.NewTicker(pipeline.DefaultRecheck)
	defer t.Stop()
	var last map[string]string
	var lastAt time.Time
	for {
		now := time.Now()
		if h := d.folderHealth(); !maps.Equal(h, last) || now.Sub(lastAt) >= healthRefresh {
			if d.writeHealth(ctx, HealthRecord{At: now, Degraded: h}) == nil {
				last, lastAt = h, now
			}
		}
		select {
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = d.store.SetMeta(wctx, HostMetaKey(d.config(), healthMetaKey), "")
			cancel()
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) writeHealth(ctx context.Context, rec HealthRecord) error {
	b, err := json.Marshal(rec)
	if err == nil {
		err = d.store.SetMeta(ctx, HostMetaKey(d.config(), healthMetaKey), string(b))
	}
	if err != nil && ctx.Err() == nil {
		d.log.Warn("record folder health for status", "err", err)
	}
	return err
}

// ReadHealth returns the folder health the running daemon of cfg (on this host) last recorded;
// ok is false when no daemon has recorded any (it is not running, or stopped cleanly).
func ReadHealth(ctx context.Context, st store.Store, cfg *config.Config) (rec HealthRecord, ok bool, err error) {
	s, err := st.GetMeta(ctx, HostMetaKey(cfg, healthMetaKey))
	if err != nil || s == "" {
		return HealthRecord{}, false, err
	}
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		return HealthRecord{}, false, nil
	}
	return rec, true, nil
}

package daemon

// The job store: SQLite in state_dir, or the PostgreSQL database of database.url that several
// daemons (on several hosts) share. With a shared store each daemon registers itself in the
// store's instance registry and keeps its heartbeat there, for `status` and the dashboard.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// OpenStore opens the configured job store: the PostgreSQL database of database.url, or the
// SQLite file in state_dir. readOnly opens it for reading only (no migration).
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger, readOnly bool) (store.Store, error) {
	opts := store.Options{Logger: log, ReadOnly: readOnly, Password: cfg.Database.Password}
	if cfg.Database.Shared() {
		st, err := store.OpenPostgres(ctx, cfg.Database.URL, opts)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := store.Open(ctx, filepath.Join(cfg.StateDir, DBFileName), opts)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// hostClock is this host's clock as checkClock reads it (a test sets it off).
var hostClock = time.Now

// clockReader is a shared store that reads its server's clock.
type clockReader interface {
	ServerTime(ctx context.Context) (server, local time.Time, err error)
}

// checkClock refuses a host whose clock is off from the database server's by more than a
// quarter of the lease. Every host compares leases, due times and heartbeats the others wrote
// with its own clock: a host ahead by a lease steals the live jobs of the others (their work is
// done twice, their saves refused), and a host behind takes over a dead host's jobs that much
// late.
func checkClock(ctx context.Context, st store.Store, lease time.Duration) error {
	cr, ok := st.(clockReader)
	if !ok {
		return nil
	}
	server, local, err := cr.ServerTime(ctx)
	if err != nil {
		return err
	}
	off := local.Add(hostClock().Sub(time.Now())).Sub(server)
	if off.Abs() <= lease/4 {
		return nil
	}
	way := "ahead of"
	if off < 0 {
		way = "behind"
	}
	return fmt.Errorf("this host's clock is %s %s the database server's: hosts sharing a database compare each other's leases, so their clocks must agree within %s (a quarter of database.lease); synchronize the clocks (NTP)",
		off.Abs().Round(100*time.Millisecond), way, lease/4)
}

// InstanceLive is how recent an instance's heartbeat must be for it to count as running.
const InstanceLive = 2 * time.Minute

// instanceHeartbeat is how often a daemon records that it is alive; instances silent for
// instancePrune are forgotten.
const (
	instanceHeartbeat = 20 * time.Second
	instancePrune     = 24 * time.Hour
)

// register records this daemon in the store's instance registry.
func (d *Daemon) register(ctx context.Context) error {
	host, _ := os.Hostname()
	in := store.Instance{ID: d.owner, Host: host, PID: os.Getpid(), Version: d.version, ConfigPath: d.config().File}
	if err := d.store.RegisterInstance(ctx, in, time.Now()); err != nil {
		return err
	}
	if n, err := d.store.PruneInstances(ctx, time.Now().Add(-instancePrune)); err == nil && n > 0 {
		d.log.Info("forgot instances silent for a day", "instances", n)
	}
	return nil
}

// heartbeatLoop keeps this daemon's instance row fresh until ctx ends, registering it again
// if another daemon pruned it meanwhile.
func (d *Daemon) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(instanceHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := checkClock(ctx, d.store, d.config().Database.Lease); err != nil && ctx.Err() == nil {
			d.log.Error("the clocks of the hosts disagree", "err", err)
		}
		err := d.store.HeartbeatInstance(ctx, d.owner, time.Now())
		if err != nil && ctx.Err() == nil {
			if err = d.register(ctx); err != nil {
				d.log.Warn("record this instance's heartbeat", "err", err)
			}
		}
	}
}

// unregister removes this daemon from the registry at a clean shutdown.
func (d *Daemon) unregister() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.store.RemoveInstance(ctx, d.owner); err != nil {
		d.log.Warn("remove this instance from the registry", "err", err)
	}
}

// storeIdentity fills the lock holder of input folders with the shared store's identity, so
// that daemons on the same database share the folders and any other is refused.
func (d *Daemon) storeIdentity(ctx context.Context) error {
	pg, ok := d.store.(*store.Postgres)
	if !ok {
		return nil
	}
	id, err := pg.StoreID(ctx)
	if err != nil {
		return fmt.Errorf("open the job store: %w", err)
	}
	d.inputHolder.Store, d.inputHolder.Database = id, pg.Name()
	return nil
}

// instances is the HTTP surface's list of live instances; nil with SQLite.
func (d *Daemon) instances() func(context.Context) ([]jobview.Instance, error) {
	if !d.config().Database.Shared() {
		return nil
	}
	return func(ctx context.Context) ([]jobview.Instance, error) {
		return jobview.LiveInstances(ctx, d.store, time.Now(), InstanceLive)
	}
}

package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgApplication marks a schema as ours, as application_id does an SQLite file: pointing the
// daemon at somebody else's database fails loudly instead of adding tables to it.
const pgApplication = "mosaic-watch"

//go:embed migrations_pg/*.sql
var embeddedPGMigrations embed.FS

var pgMigrationFS fs.FS = mustSub(embeddedPGMigrations, "migrations_pg")

// pgSchemaTable holds the application marker and the schema version, one row. The migrator
// owns it (it is not in a migration), like PRAGMA user_version in SQLite.
const pgSchemaTable = `CREATE TABLE IF NOT EXISTS mosaic_watch_schema (
    one         BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    application TEXT    NOT NULL,
    version     INTEGER NOT NULL
)`

type pgQueryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readPGHeader returns the marker of the current schema; found is false if it has none.
func readPGHeader(ctx context.Context, q pgQueryer) (app string, version int, found bool, err error) {
	err = q.QueryRow(ctx,
		"SELECT to_regclass(quote_ident(current_schema()) || '.mosaic_watch_schema') IS NOT NULL").Scan(&found)
	if err != nil || !found {
		return "", 0, false, err
	}
	err = q.QueryRow(ctx, "SELECT application, version FROM mosaic_watch_schema").Scan(&app, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, true, nil // an empty marker: not ours, see checkPGHeader
	}
	return app, version, true, err
}

// checkPGHeader rejects schemas that are not ours or are newer than the migrations we know.
func checkPGHeader(name, app string, version, latest int) error {
	if app != pgApplication {
		return fmt.Errorf("open store: %s is not a mosaic-watch database (its mosaic_watch_schema table names %q)", name, app)
	}
	if version > latest {
		return fmt.Errorf("open store %s: database schema version %d is newer than this mosaic-watch supports (%d); upgrade mosaic-watch", name, version, latest)
	}
	return nil
}

// tablesInSchema counts the tables and views of the current schema.
func tablesInSchema(ctx context.Context, q pgQueryer) (int, error) {
	var n int
	err := q.QueryRow(ctx,
		"SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()").Scan(&n)
	return n, err
}

// migratePG brings the current schema to the newest version in fsys: all pending migrations and
// the marker run in one transaction (PostgreSQL's DDL is transactional, so a failure leaves the
// schema as it was), under an advisory lock so that daemons starting together migrate once.
func migratePG(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, name string, log *slog.Logger) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return fmt.Errorf("open store %s: %w", name, err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("open store %s: begin migration: %w", name, err)
	}
	defer tx.Rollback(ctx)

	var schema string
	if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("open store %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey(schema)); err != nil {
		return fmt.Errorf("open store %s: wait for other migrations: %w", name, err)
	}
	app, version, found, err := readPGHeader(ctx, tx)
	if err != nil {
		return fmt.Errorf("open store %s: read schema version: %w", name, err)
	}
	if found {
		if err := checkPGHeader(name, app, version, len(ms)); err != nil {
			return err
		}
		if version == len(ms) {
			return nil // up to date; the deferred Rollback ends the transaction
		}
	} else {
		n, err := tablesInSchema(ctx, tx)
		if err != nil {
			return fmt.Errorf("open store %s: %w", name, err)
		}
		if n > 0 {
			return fmt.Errorf("open store: %s is not a mosaic-watch database (schema %s has %d tables but no mosaic_watch_schema table)", name, schema, n)
		}
	}
	for _, m := range ms[version:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("open store %s: migration %s: %w", name, m.name, err)
		}
		log.Info("store migrated", "database", name, "version", m.version, "migration", m.name)
	}
	if _, err := tx.Exec(ctx, pgSchemaTable); err != nil {
		return fmt.Errorf("open store %s: create mosaic_watch_schema: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO mosaic_watch_schema (application, version) VALUES ($1, $2)
ON CONFLICT (one) DO UPDATE SET application = excluded.application, version = excluded.version`,
		pgApplication, len(ms)); err != nil {
		return fmt.Errorf("open store %s: set schema version: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("open store %s: commit migration: %w", name, err)
	}
	return nil
}

func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("mosaic-watch\x00migrate\x00" + schema))
	return int64(h.Sum64())
}

// checkReadable verifies a read-only store is a mosaic-watch database at this binary's version.
// ErrNoSchema is a read-only open's error for a database without mosaic-watch's tables yet.
var ErrNoSchema = errors.New("no mosaic-watch tables yet")

// SchemaVersion is the version of the schema in the database and the newest this binary knows.
func (s *Postgres) SchemaVersion(ctx context.Context) (version, latest int, err error) {
	_, version, _, err = readPGHeader(ctx, s.pool)
	return version, len(mustMigrations(pgMigrationFS)), err
}

func (s *Postgres) checkReadable(ctx context.Context) error {
	latest := len(mustMigrations(pgMigrationFS))
	app, version, found, err := readPGHeader(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("open store %s read-only: read schema version: %w", s.name, err)
	}
	if !found {
		n, err := tablesInSchema(ctx, s.pool)
		if err != nil {
			return fmt.Errorf("open store %s read-only: %w", s.name, err)
		}
		if n > 0 {
			return fmt.Errorf("open store: %s is not a mosaic-watch database (schema %s has %d tables but no mosaic_watch_schema table)", s.name, s.namespace, n)
		}
		return fmt.Errorf("open store %s read-only: %w; start the daemon once to create them", s.name, ErrNoSchema)
	}
	if err := checkPGHeader(s.name, app, version, latest); err != nil {
		return err
	}
	if version < latest {
		return fmt.Errorf("open store %s read-only: schema version %d, this binary needs %d; start the daemon once to migrate it", s.name, version, latest)
	}
	return nil
}

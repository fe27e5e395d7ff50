package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
)

// applicationID marks the file as ours in the SQLite header ("mwat"), so that pointing the
// daemon at some other database fails loudly instead of adding tables to it.
const applicationID = 0x6d776174

//go:embed migrations/*.sql
var embeddedMigrations embed.FS

var migrationFS fs.FS = mustSub(embeddedMigrations, "migrations")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads NNNN_name.sql files; versions must be 1, 2, 3... without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var ms []migration
	for i, name := range names {
		prefix, _, ok := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", name)
		}
		if v != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (no gaps or duplicates)", name, v, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms, nil
}

func mustMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

// checkHeader rejects files that are not ours or are newer than the migrations we know.
func checkHeader(dbPath string, appID, version, latest int) error {
	if appID != 0 && appID != applicationID {
		return fmt.Errorf("open store: %s is not a mosaic-watch database (application_id %#x)", dbPath, appID)
	}
	if version > latest {
		return fmt.Errorf("open store %s: database schema version %d is newer than this mosaic-watch supports (%d); upgrade mosaic-watch", dbPath, version, latest)
	}
	return nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readHeader(ctx context.Context, q queryer) (appID, version int, err error) {
	if err := q.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return 0, 0, fmt.Errorf("read application_id: %w", err)
	}
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, 0, fmt.Errorf("read user_version: %w", err)
	}
	return appID, version, nil
}

// migrate brings the database to the newest version in fsys: all pending migrations run in one
// IMMEDIATE transaction on one connection (two daemons starting together cannot both migrate),
// user_version and application_id are set in that transaction, and foreign keys are checked
// before it commits. A failure leaves the database as it was.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS, dbPath string, log *slog.Logger) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return fmt.Errorf("open store %s: %w", dbPath, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open store %s: %w", dbPath, err)
	}
	defer conn.Close()

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("open store %s: begin migration: %w", dbPath, err)
	}
	defer tx.Rollback()

	appID, version, err := readHeader(ctx, tx)
	if err != nil {
		return fmt.Errorf("open store %s: %w", dbPath, err)
	}
	if err := checkHeader(dbPath, appID, version, len(ms)); err != nil {
		return err
	}
	if appID == 0 {
		// A fresh file has no tables; anything else without our id belongs to someone else.
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
			return fmt.Errorf("open store %s: %w", dbPath, err)
		}
		if n > 0 {
			return fmt.Errorf("open store: %s is not a mosaic-watch database (it has tables but no mosaic-watch application_id)", dbPath)
		}
	}
	if version == len(ms) && appID == applicationID {
		return nil // up to date; the deferred Rollback ends the empty transaction
	}
	for _, m := range ms[version:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("open store %s: migration %s: %w", dbPath, m.name, err)
		}
		log.Info("store migrated", "path", dbPath, "version", m.version, "migration", m.name)
	}
	// PRAGMA takes no bound parameters; both values are integers we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(ms))); err != nil {
		return fmt.Errorf("open store %s: set user_version: %w", dbPath, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		return fmt.Errorf("open store %s: set application_id: %w", dbPath, err)
	}
	if err := foreignKeyCheck(ctx, tx); err != nil {
		return fmt.Errorf("open store %s: after migration: %w", dbPath, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("open store %s: commit migration: %w", dbPath, err)
	}
	return nil
}

func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("foreign_key_check: %w", err)
		}
		problems = append(problems, fmt.Sprintf("%s row %d -> %s", table, rowid.Int64, parent))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("foreign key violations: %s", strings.Join(problems, "; "))
	}
	return nil
}

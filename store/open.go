package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// readPoolSize bounds the read-only pool (List/Get/History...): each connection has its own
// page cache, and reads are short.
const readPoolSize = 4

// sqliteNotADB is SQLITE_NOTADB: the file exists but is not an SQLite database.
const sqliteNotADB = 26

// SQLite is the Store backed by one SQLite file in WAL mode.
//
// Writes go through w, a pool of exactly one connection, so writers are serialized inside the
// process; every write transaction is BEGIN IMMEDIATE (_txlock=immediate) so writers in other
// processes wait on busy_timeout instead of failing with SQLITE_BUSY. Reads go through r, a small
// pool opened with mode=ro, so a long status listing never holds up a Save.
type SQLite struct {
	w    *sql.DB // nil when read-only
	r    *sql.DB
	ws   *stmtCache // prepared statements of w
	rs   *stmtCache // prepared statements of r
	path string
	log  *slog.Logger
	now  func() time.Time // UpdatedAt and event times of Save
}

// Open opens (creating if needed) the SQLite database file at path; the directory must exist.
// It migrates the schema to the version this binary knows, refusing files that are not
// mosaic-watch databases or were written by a newer mosaic-watch. With opts.ReadOnly the file must
// already exist and is neither created nor migrated.
func Open(ctx context.Context, path string, opts Options) (*SQLite, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &SQLite{path: abs, log: log, now: time.Now}
	if opts.ReadOnly {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("open store %s read-only: %w", abs, err)
		}
	} else {
		if err := makePrivate(abs, log); err != nil {
			return nil, fmt.Errorf("open store %s: %w", abs, err)
		}
		if err := s.openWriter(ctx); err != nil {
			return nil, err
		}
	}
	if s.r, err = sql.Open("sqlite", readerDSN(abs)); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	s.r.SetMaxOpenConns(readPoolSize)
	s.r.SetMaxIdleConns(readPoolSize)
	s.rs = newStmtCache(s.r)
	if opts.ReadOnly {
		if err := s.checkReadable(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// makePrivate creates the database file readable by its owner only, before SQLite opens it: it
// holds signed output URLs. SQLite gives the -wal and -shm files it creates the database's mode.
// Files an older version created 0644 are narrowed.
func makePrivate(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close() // an empty file is an empty SQLite database
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil // permission bits mean little there; the state folder's ACL decides
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, fi.Mode().Perm()&0o600); err != nil {
			// Not ours to change (another owner): say so, but do not refuse to start.
			log.Warn("store: the database can be read by other users and its mode cannot be changed",
				"path", p, "mode", fi.Mode().Perm().String(), "err", err)
			continue
		}
		log.Info("store: made the database readable by its owner only", "path", p, "was", fi.Mode().Perm().String())
	}
	return nil
}

func (s *SQLite) openWriter(ctx context.Context) error {
	w, err := sql.Open("sqlite", writerDSN(s.path))
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	// One connection: writers are serialized here, and the per-connection pragmas of the DSN
	// hold for every write. Keep it open for the life of the store.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.w = w
	s.ws = newStmtCache(w)

	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		s.Close()
		return s.openError(err)
	}
	if !strings.EqualFold(mode, "wal") {
		s.Close()
		return fmt.Errorf("open store %s: journal_mode is %q, want wal (is the file on a network filesystem?)", s.path, mode)
	}
	if err := migrate(ctx, w, migrationFS, s.path, s.log); err != nil {
		s.Close()
		return err
	}
	if err := s.ws.prepare(ctx, writeStatements()...); err != nil {
		s.Close()
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	return nil
}

// openError turns "file is not a database" into the message a person needs.
func (s *SQLite) openError(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqliteNotADB {
		return fmt.Errorf("open store: %s is not a mosaic-watch database (not an SQLite file)", s.path)
	}
	return fmt.Errorf("open store %s: %w", s.path, err)
}

// checkReadable verifies a read-only store is a mosaic-watch database at this binary's version.
func (s *SQLite) checkReadable(ctx context.Context) error {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return s.openError(err)
	}
	defer conn.Close()
	appID, version, err := readHeader(ctx, conn)
	if err != nil {
		return s.openError(err)
	}
	latest := len(mustMigrations(migrationFS))
	if err := checkHeader(s.path, appID, version, latest); err != nil {
		return err
	}
	if appID == 0 || version < latest {
		return fmt.Errorf("open store %s read-only: schema version %d, this binary needs %d; start the daemon once to migrate it", s.path, version, latest)
	}
	return nil
}

// Close closes both pools. It is safe on a half-opened store.
func (s *SQLite) Close() error {
	errs := []error{s.rs.close(), s.ws.close()}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// writerDSN is the DSN of the single write connection. busy_timeout comes first: setting WAL
// itself needs a lock. Times are stored as integers by this package, _time_format only guards
// against a stray time.Time argument being written with its monotonic clock reading.
func writerDSN(path string) string {
	return fileURI(path) + "?" + strings.Join([]string{
		"_pragma=busy_timeout(10000)",
		"_pragma=journal_mode(WAL)",
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(NORMAL)",
		"_txlock=immediate",
		"_time_format=sqlite",
	}, "&")
}

// readerDSN opens read-only (mode=ro: SQLite refuses every write and never creates the file).
// journal_mode is not set here: changing it is a write; the writer already made the file WAL.
func readerDSN(path string) string {
	return fileURI(path) + "?" + strings.Join([]string{
		"mode=ro",
		"_pragma=busy_timeout(10000)",
		"_pragma=foreign_keys(1)",
		"_time_format=sqlite",
	}, "&")
}

// fileURI makes an SQLite file: URI from an absolute path. Windows drive paths need a leading
// slash (file:/C:/...); characters special in a URI (?, #, %, space) are percent-escaped.
func fileURI(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return "file:" + (&url.URL{Path: p}).EscapedPath()
}

package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// defaultPGPoolSize is the pool size unless the URL sets pool_max_conns: every pipeline worker
// saves through it, and a connection costs the server a process.
const defaultPGPoolSize = 8

// agentLockPoolSize bounds the connections that hold (or wait for) agent locks: one per agent
// starting a run in this process at a time.
const agentLockPoolSize = 8

// Postgres is the Store backed by one PostgreSQL database shared by several daemons, usually on
// several hosts. Jobs are claimed with FOR UPDATE SKIP LOCKED and held by leases, so two daemons
// never work on one job and a dead daemon's jobs are taken over when its leases run out; run
// starts of one agent are serialized by a transaction-scoped advisory lock (LockAgent).
//
// The tables live in the connection's current schema (the first existing schema of search_path;
// `?search_path=name` in the URL picks one), so several installations can share a database.
type Postgres struct {
	pool      *pgxpool.Pool
	locks     *pgxpool.Pool // agent locks: held across a run start, apart from the work pool
	readOnly  bool
	name      string // the database and schema, for messages (never the password)
	namespace string // current schema: keys advisory locks so installations do not collide
	log       *slog.Logger
	now       func() time.Time // UpdatedAt and event times of Save
	local     keyedLocks       // one waiter per agent per process: a lock connection each

	closing context.Context // done when Close begins: stops waits for agent locks
	stop    context.CancelFunc
	heldMu  sync.Mutex
	held    map[*pgAgentLock]struct{} // agent locks held; nil once closed
}

// OpenPostgres connects to the PostgreSQL database at rawURL (postgres://user@host/db?...; the
// password may come from the URL, PGPASSWORD or ~/.pgpass, as for psql) and migrates its schema
// to the version this binary knows, refusing a database that is not a mosaic-watch database or
// was written by a newer mosaic-watch. With opts.ReadOnly nothing is migrated and PostgreSQL
// itself refuses writes (default_transaction_read_only).
func OpenPostgres(ctx context.Context, rawURL string, opts Options) (*Postgres, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg, err := ParsePostgresURL(rawURL)
	if err != nil {
		return nil, err
	}
	s := &Postgres{readOnly: opts.ReadOnly, name: describePG(cfg), log: log, now: time.Now,
		held: map[*pgAgentLock]struct{}{}}
	s.closing, s.stop = context.WithCancel(context.Background())
	if !setsPoolSize(rawURL) {
		cfg.MaxConns = defaultPGPoolSize
	}
	if opts.Password != "" {
		cfg.ConnConfig.Password = opts.Password
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "mosaic-watch"
	if opts.ReadOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.name, err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", s.name, err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(current_schema(), '')").Scan(&s.namespace); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", s.name, err)
	}
	if s.namespace == "" {
		s.Close()
		return nil, fmt.Errorf("open store %s: no schema to use: search_path names no existing schema (create it, or fix search_path)", s.name)
	}
	if opts.ReadOnly {
		err = s.checkReadable(ctx)
	} else {
		err = migratePG(ctx, s.pool, pgMigrationFS, s.name, s.log)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		if s.locks, err = pgxpool.NewWithConfig(ctx, lockPoolConfig(cfg)); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", s.name, err)
		}
	}
	return s, nil
}

// ParsePostgresURL checks the shape of a postgres:// URL and parses it as pgx does, without
// connecting. Errors never contain the password.
func ParsePostgresURL(rawURL string) (*pgxpool.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, password included; its cause does not.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("database URL is not a valid URL (want postgres://user@host:port/database): %v", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("database URL %s: scheme %q, want postgres://", redacted(u), u.Scheme)
	}
	if strings.Trim(u.Path, "/") == "" {
		return nil, fmt.Errorf("database URL %s: no database name (postgres://user@host:port/database)", redacted(u))
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx masks the password of a URL in its message.
		return nil, fmt.Errorf("database URL: %w", err)
	}
	return cfg, nil
}

// RedactURL is a database URL for messages: its password, if any, replaced by xxxxx.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	return redacted(u)
}

// redacted is u without its password: in the user info, and in the password parameter, which
// libpq and pgx accept as well (postgres://user@host/db?password=...).
func redacted(u *url.URL) string {
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		c := *u
		c.RawQuery = q.Encode()
		u = &c
	}
	return u.Redacted()
}

// setsPoolSize reports whether the URL sets pool_max_conns (pgx has applied it).
func setsPoolSize(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Query().Has("pool_max_conns")
}

// lockPoolConfig is the work pool's configuration for the agent-lock pool. A lock is held in an
// open transaction across a run start; the server must notice a holder that vanished (host
// powered off, network cut), so TCP keepalives are short, and a holder stuck for ten minutes
// loses its session and so its lock.
func lockPoolConfig(work *pgxpool.Config) *pgxpool.Config {
	cfg := work.Copy()
	cfg.MaxConns = agentLockPoolSize
	cfg.MinConns, cfg.MinIdleConns = 0, 0
	for k, v := range map[string]string{
		"tcp_keepalives_idle":                 "30",
		"tcp_keepalives_interval":             "10",
		"tcp_keepalives_count":                "3",
		"idle_in_transaction_session_timeout": "600000", // ms
		"application_name":                    "mosaic-watch agent lock",
	} {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	return cfg
}

// describePG names the database in messages: user, host, database and schema, no password.
func describePG(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	host := c.Host
	if strings.HasPrefix(host, "/") {
		host = "[" + host + "]" // a unix socket folder
	}
	s := fmt.Sprintf("postgres://%s@%s:%d/%s", c.User, host, c.Port, c.Database)
	if sp := c.RuntimeParams["search_path"]; sp != "" {
		s += "?search_path=" + sp
	}
	return s
}

// String names the database: user, host, database and schema, never the password.
func (s *Postgres) String() string { return s.name }

// Close releases the agent locks still held and closes the connection pools.
func (s *Postgres) Close() error {
	s.stop()
	s.heldMu.Lock()
	held := s.held
	s.held = nil
	s.heldMu.Unlock()
	for l := range held {
		l.release()
	}
	if s.locks != nil {
		s.locks.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	return nil
}

// lockKey is the advisory-lock key of name within this installation (schema).
func (s *Postgres) lockKey(kind, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("mosaic-watch\x00" + kind + "\x00" + s.namespace + "\x00" + name))
	return int64(h.Sum64())
}

// LockAgent waits for the advisory lock of agentID, taken in a transaction on a connection of the
// lock pool and released by ending that transaction (or by the session ending with the process).
// Waiters of this process queue in memory first, so each agent needs at most one connection.
// If the session is lost while held, the lock is gone without the holder knowing; that only
// widens the window in which a lost run start of this agent could be ambiguous to reconcile.
// Close releases every lock still held and stops every wait.
func (s *Postgres) LockAgent(ctx context.Context, agentID string) (func(), error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()

	l := &pgAgentLock{}
	var err error
	if l.unlockLocal, err = s.local.lock(ctx, agentID); err != nil {
		return nil, fmt.Errorf("lock agent %s: %w", agentID, err)
	}
	if l.conn, err = s.locks.Acquire(ctx); err != nil {
		l.release()
		return nil, fmt.Errorf("lock agent %s: %w", agentID, err)
	}
	if l.tx, err = l.conn.Begin(ctx); err == nil {
		_, err = l.tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.lockKey("agent", agentID))
	}
	if err != nil {
		l.release()
		return nil, fmt.Errorf("lock agent %s: %w", agentID, err)
	}
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	if s.held == nil {
		l.release()
		return nil, fmt.Errorf("lock agent %s: the store is closed", agentID)
	}
	s.held[l] = struct{}{}
	return func() {
		s.heldMu.Lock()
		delete(s.held, l)
		s.heldMu.Unlock()
		l.release()
	}, nil
}

// pgAgentLock is one agent lock: a transaction holding an advisory lock.
type pgAgentLock struct {
	mu          sync.Mutex
	conn        *pgxpool.Conn
	tx          pgx.Tx
	unlockLocal func()
}

// release ends the lock's transaction, which frees the advisory lock, returns the connection
// and lets the next waiter of this process in. Later calls do nothing.
func (l *pgAgentLock) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tx != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if l.tx.Rollback(ctx) != nil {
			l.conn.Conn().Close(ctx) // a session in an unknown state is not pooled
		}
		cancel()
		l.tx = nil
	}
	if l.conn != nil {
		l.conn.Release()
		l.conn = nil
	}
	if l.unlockLocal != nil {
		l.unlockLocal()
		l.unlockLocal = nil
	}
}

// Name is the database (and schema) for messages: never the password.
func (s *Postgres) Name() string { return s.name }

// StoreID is the database's identity: an id created once by whichever daemon asks first, and
// where the database lives. Daemons that share input folders compare it to know they share one
// store.
func (s *Postgres) StoreID(ctx context.Context) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	// Two statements: the second sees the row a concurrent first daemon committed.
	_, err := s.pool.Exec(ctx, "INSERT INTO meta (key, value) VALUES ('store_id', $1) ON CONFLICT (key) DO NOTHING",
		hex.EncodeToString(b[:]))
	// The row travels with a copy of the database (pg_dump and restore, CREATE DATABASE ...
	// TEMPLATE), which is another job store: where it lives is part of the identity. The
	// server's system identifier (new with each initdb), the database's and the schema's oids
	// differ between a database and its copy; every daemon reaching one database (by
	// whatever host name) reads the same.
	var id, where string
	if err == nil {
		err = s.pool.QueryRow(ctx, `SELECT m.value, d.oid::text || '.' || n.oid::text
FROM meta m, pg_database d, pg_namespace n
WHERE m.key = 'store_id' AND d.datname = current_database() AND n.nspname = current_schema()`).Scan(&id, &where)
	}
	if err != nil {
		return "", fmt.Errorf("read the store id of %s: %w", s.name, err)
	}
	// A hosted server may deny pg_control_system; the oids still tell copies on one server apart.
	var system string
	if s.pool.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&system) == nil {
		where = system + "." + where
	}
	return id + "@" + where, nil
}

// ServerTime reads the database server's clock and the moment of this host's clock (the
// midpoint of the round trip) it corresponds to. Leases, due times and heartbeats written by
// several hosts are compared across hosts, so the daemons check their clocks against it.
func (s *Postgres) ServerTime(ctx context.Context) (server, local time.Time, err error) {
	before := time.Now()
	var ms int64
	err = s.pool.QueryRow(ctx, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint").Scan(&ms)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("read the clock of %s: %w", s.name, err)
	}
	return fromMillis(ms), before.Add(time.Since(before) / 2), nil
}

package config

// The database section: where the job store lives. Absent, it is SQLite in state_dir; with a
// url, it is a PostgreSQL database that several daemons (on several hosts) may share.

import (
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
	"go.yaml.in/yaml/v3"
)

var databaseKeys = []string{"url", "password_file", "lease"}

// DefaultLease is database.lease: how long a job a daemon works on stays its own without a
// heartbeat. A host that dies leaves its jobs to the others after at most this long.
const DefaultLease = 60 * time.Second

// minLease keeps heartbeats (a third of the lease) from flooding the database.
const minLease = 2 * time.Second

// Database is the `database:` section.
type Database struct {
	// URL is database.url (after ${VAR} expansion): a postgres:// URL, or "" for SQLite in
	// state_dir. It may hold a password: never print it (Redacted does not).
	URL string
	// Password is the trimmed contents of database.password_file ("" = from the URL,
	// PGPASSWORD or ~/.pgpass, as for psql). Secret.
	Password string
	// Lease is database.lease: how long a job stays claimed by a daemon without its heartbeat;
	// another host takes over a dead one's jobs after it (default DefaultLease).
	Lease time.Duration
}

// Shared reports whether the job store is a database other daemons may share (PostgreSQL).
func (d Database) Shared() bool { return d.URL != "" }

// Redacted is the URL without its password, for messages.
func (d Database) Redacted() string { return store.RedactURL(d.URL) }

// databaseState is what the loader remembers of the section for validation.
type databaseState struct {
	line           int       // the section's key line
	url            *location // where url was set
	passwordFile   *location
	passwordFileAt string
}

func (l *loader) walkDatabase(n *yaml.Node, p string) {
	c := l.cfg
	l.mapping(n, p, databaseKeys, func(key string, _, v *yaml.Node, p string) {
		switch key {
		case "url":
			l.db.url = &location{p, v.Line}
			if s, ok := l.str(v, p); ok {
				c.Database.URL = strings.TrimSpace(s)
				if c.Database.URL == "" {
					l.problem(p, v.Line, "is empty; remove database: to keep the jobs in SQLite in state_dir")
				}
			}
		case "lease":
			if d, ok := l.duration(v, p, minLease, time.Hour); ok {
				c.Database.Lease = d
			}
		case "password_file":
			l.db.passwordFile = &location{p, v.Line}
			if s, ok := l.pathValue(v, p); ok {
				l.db.passwordFileAt = s
			}
		}
	})
}

// validateDatabase checks the URL's shape (never printing its password) and reads the
// password file.
func (l *loader) validateDatabase() {
	c := l.cfg
	if l.db.url != nil && c.Database.URL != "" {
		if _, err := store.ParsePostgresURL(c.Database.URL); err != nil {
			l.problem(l.db.url.path, l.db.url.line, "%s", err.Error())
		}
	}
	at := l.db.passwordFile
	if at == nil || l.db.passwordFileAt == "" {
		return
	}
	if l.db.url == nil {
		l.problem(at.path, at.line, "is set but database.url is not: the password is for a PostgreSQL database")
		return
	}
	fi, err := os.Stat(l.db.passwordFileAt)
	if err == nil && !fi.Mode().IsRegular() {
		l.problem(at.path, at.line, "%s is not a regular file", l.db.passwordFileAt)
		return
	}
	data, err := os.ReadFile(l.db.passwordFileAt)
	if err != nil {
		l.problem(at.path, at.line, "cannot read %s: %s", l.db.passwordFileAt, errText(err))
		return
	}
	c.Database.Password = strings.TrimSpace(string(data))
	if c.Database.Password == "" {
		l.problem(at.path, at.line, "%s is empty", l.db.passwordFileAt)
		return
	}
	if fi != nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		l.warn(at.path, at.line, "password file %s can be read by other users (mode %#o); run: chmod 600 %s",
			l.db.passwordFileAt, fi.Mode().Perm(), l.db.passwordFileAt)
	}
}

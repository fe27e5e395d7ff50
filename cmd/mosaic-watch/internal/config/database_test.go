package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDatabaseURL(t *testing.T) {
	dir := testDir(t)
	env := testEnv(map[string]string{"MOSAIC_API_KEY": "mk_x", "DB_HOST": "db.internal"})
	cfg := loadOK(t, dir, minimal+"database:\n  url: postgres://mosaic@${DB_HOST}/mosaic_watch\n", env)
	if cfg.Database.URL != "postgres://mosaic@db.internal/mosaic_watch" || !cfg.Database.Shared() {
		t.Fatalf("database = %+v", cfg.Database)
	}
	if cfg := loadOK(t, dir, minimal, env); cfg.Database.Shared() {
		t.Fatalf("no database section: %+v, want SQLite", cfg.Database)
	}
}

// A bad URL is reported at its line, by key, and its password never appears.
func TestDatabaseURLProblemsHideThePassword(t *testing.T) {
	for _, tc := range []struct{ url, frag string }{
		{"mysql://u:s3cret-pw@h/db", `scheme "mysql"`},
		{"postgres://u:s3cret-pw@h/", "no database name"},
		{"postgres://u:s3cret-pw@h:notaport/db", "database URL"},
	} {
		dir := testDir(t)
		_, err := Load(writeConfig(t, dir, minimal+"database:\n  url: "+tc.url+"\n", 0o600), defaultTestEnv)
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("%s: Load = %v, want problems", tc.url, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "config.yaml:8: database.url: ") || !strings.Contains(msg, tc.frag) {
			t.Errorf("%s: %s, want a problem at line 8 naming %q", tc.url, msg, tc.frag)
		}
		if strings.Contains(msg, "s3cret-pw") {
			t.Errorf("%s: the password is printed: %s", tc.url, msg)
		}
	}
}

func TestDatabasePasswordFile(t *testing.T) {
	dir := testDir(t)
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := loadOK(t, dir, minimal+"database:\n  url: postgres://mosaic@db/mw\n  password_file: "+pw+"\n", defaultTestEnv)
	if cfg.Database.Password != "hunter2" {
		t.Fatalf("password = %q", cfg.Database.Password)
	}
	_, err := Load(writeConfig(t, dir, minimal+"database:\n  password_file: "+pw+"\n", 0o600), defaultTestEnv)
	if err == nil || !strings.Contains(err.Error(), "database.password_file: is set but database.url is not") {
		t.Fatalf("password_file without url: %v", err)
	}
}

// database.* needs a restart: a reload keeps the running store.
func TestDatabaseChangeNeedsRestart(t *testing.T) {
	dir := testDir(t)
	running := loadOK(t, dir, minimal, defaultTestEnv)
	next := loadOK(t, dir, minimal+"database:\n  url: postgres://mosaic@db/mw\n", defaultTestEnv)
	r := PlanReload(running, next)
	if r.Config.Database != running.Database || !strings.Contains(strings.Join(r.NeedRestart, ","), "database") {
		t.Fatalf("applied %+v, report %+v", r.Config.Database, r)
	}
}

// After a bad edit elsewhere, status still finds the shared database of the configuration.
func TestStoreOfAFileWithProblems(t *testing.T) {
	dir := testDir(t)
	path := writeConfig(t, dir, minimal+"database:\n  url: postgres://mosaic@db/mw\nstate_dir: {{DIR}}/st\nsettle: nonsense\n", 0o600)
	if _, err := Load(path, defaultTestEnv); err == nil {
		t.Fatal("the file should not load")
	}
	c := StoreOf(path, defaultTestEnv)
	if c.Database.URL != "postgres://mosaic@db/mw" || c.StateDir != filepath.Join(dir, "st") || c.File != path {
		t.Fatalf("StoreOf = %+v", c)
	}
}

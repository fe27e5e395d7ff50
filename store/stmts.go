package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// stmtCache keeps prepared statements per query text: parsing SQL is about a third of the CPU of
// a small statement in the transpiled engine, and the daemon runs the same few queries all day.
// database/sql re-prepares a cached statement on whichever pooled connection runs it.
//
// The write pool has ONE connection, held by any open transaction, so preparing on the pool from
// inside a transaction would wait for itself forever. Write statements are therefore prepared up
// front (prepare, at Open); inside a transaction inTx only binds cached statements to the
// transaction's connection, and prepares anything else on that connection, uncached.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

// prepare caches queries now; call it while no transaction holds a connection.
func (c *stmtCache) prepare(ctx context.Context, queries ...string) error {
	for _, q := range queries {
		if _, err := c.get(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// get returns the cached statement for query, preparing it on the pool if needed. Not for use
// on the write pool inside a transaction (see the type comment).
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query) // outside the lock: it may wait for a connection
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		st.Close() // another goroutine won the race
		return prev, nil
	}
	c.m[query] = st
	return st, nil
}

// inTx returns query as a statement of tx: the cached one bound to tx's connection, or a fresh
// one prepared on that connection (closed with the transaction).
func (c *stmtCache) inTx(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return tx.StmtContext(ctx, st), nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return st, nil
}

func (c *stmtCache) close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

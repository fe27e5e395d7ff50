package store

import (
	"context"
	"sync"
)

// keyedLocks is a set of mutexes by name whose Lock gives up when its context is done.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	held chan struct{} // one token: sent to lock, received to unlock
	refs int           // holders and waiters; the entry is dropped at 0
}

// lock waits for key's lock, or until ctx is done. unlock may be called more than once.
func (k *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{held: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()

	select {
	case l.held <- struct{}{}:
	case <-ctx.Done():
		k.drop(key, l)
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.held
			k.drop(key, l)
		})
	}, nil
}

func (k *keyedLocks) drop(key string, l *keyedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(k.m, key)
	}
}

// sqliteAgentLocks are the agent locks of every SQLite store in this process, by database path:
// two handles on one file (tests, the CLI beside the daemon's store) share them. One process
// owns a SQLite database, so a lock in memory serializes all of its run starts.
var sqliteAgentLocks keyedLocks

// LockAgent serializes run starts of agentID among the users of this database file in this
// process.
func (s *SQLite) LockAgent(ctx context.Context, agentID string) (func(), error) {
	if s.w == nil {
		return nil, ErrReadOnly
	}
	return sqliteAgentLocks.lock(ctx, s.path+"\x00"+agentID)
}

// Package session keeps the bearer-token sessions of sample-service in memory.
//
// See docs/adr/0002-session-store-locking.md for the locking rules.
package session

import (
	"sync"
	"time"
)

// User is the account a session belongs to.
type User struct {
	ID    string
	Name  string
	Roles []string
}

// Session is one issued bearer token.
type Session struct {
	Token     string
	User      User
	ExpiresAt time.Time
	LastSeen  time.Time
}

// Expired reports whether the session is no longer valid at now.
func (s *Session) Expired(now time.Time) bool {
	return !now.Before(s.ExpiresAt)
}

// Store maps tokens to sessions. It is safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	sessions map[string]*Session
	now      func() time.Time
	idle     time.Duration
}

// NewStore returns an empty store; sessions idle for longer than idle are removed by Sweep.
func NewStore(idle time.Duration, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{sessions: make(map[string]*Session), now: now, idle: idle}
}

// Put adds or replaces a session.
func (s *Store) Put(sess *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.LastSeen = s.now()
	s.sessions[sess.Token] = sess
}

// Get returns the session for token, or nil when there is none, and marks it as seen.
func (s *Store) Get(token string) *Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess := s.sessions[token]
	if sess != nil {
		sess.LastSeen = s.now()
	}
	return sess
}

// Delete removes the session for token, if any.
func (s *Store) Delete(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, token)
}

// Len is the number of sessions held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sessions)
}

// Sweep removes sessions that expired or were idle for longer than the store's idle limit,
// and returns how many it removed.
func (s *Store) Sweep() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	removed := 0
	for token, sess := range s.sessions {
		if sess.Expired(now) || now.Sub(sess.LastSeen) > s.idle {
			delete(s.sessions, token)
			removed++
		}
	}
	return removed
}

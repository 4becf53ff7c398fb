package session

import (
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func TestStorePutGet(t *testing.T) {
	c := newClock()
	s := NewStore(time.Hour, c.Now)
	s.Put(&Session{Token: "t1", User: User{ID: "u1", Name: "Ada"}, ExpiresAt: c.Now().Add(time.Hour)})
	got := s.Get("t1")
	if got == nil || got.User.Name != "Ada" {
		t.Fatalf("Get(t1) = %+v, want Ada's session", got)
	}
	if s.Get("nope") != nil {
		t.Fatal("Get(nope) should be nil")
	}
}

func TestStoreSweepRemovesExpiredAndIdle(t *testing.T) {
	c := newClock()
	s := NewStore(10*time.Minute, c.Now)
	s.Put(&Session{Token: "expired", ExpiresAt: c.Now().Add(time.Minute)})
	s.Put(&Session{Token: "idle", ExpiresAt: c.Now().Add(time.Hour)})
	s.Put(&Session{Token: "busy", ExpiresAt: c.Now().Add(time.Hour)})
	c.Advance(11 * time.Minute)
	s.Get("busy")
	if n := s.Sweep(); n != 2 {
		t.Fatalf("Sweep removed %d sessions, want 2", n)
	}
	if s.Len() != 1 || s.Get("busy") == nil {
		t.Fatal("the busy session should be the only one left")
	}
}

// Requests for the same token arrive on many connections at once; the sweeper runs meanwhile.
// Run with -race: every access to a session must be ordered by the store's lock.
func TestStoreConcurrentGetAndSweep(t *testing.T) {
	c := newClock()
	s := NewStore(time.Hour, c.Now)
	s.Put(&Session{Token: "shared", User: User{ID: "u1"}, ExpiresAt: c.Now().Add(time.Hour)})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if s.Get("shared") == nil {
					t.Error("session disappeared")
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; j < 100; j++ {
			s.Sweep()
		}
	}()
	wg.Wait()
}

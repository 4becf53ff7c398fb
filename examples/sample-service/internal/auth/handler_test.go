package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"example.com/sample-service/internal/session"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func newHandler() *Handler {
	now := func() time.Time { return t0 }
	store := session.NewStore(time.Hour, now)
	store.Put(&session.Session{Token: "valid", User: session.User{ID: "u1", Name: "Ada"}, ExpiresAt: t0.Add(time.Hour)})
	store.Put(&session.Session{Token: "old", User: session.User{ID: "u2"}, ExpiresAt: t0.Add(-time.Minute)})
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		_, _ = w.Write([]byte("hello " + u.Name))
	})
	return &Handler{Sessions: store, Next: next, Now: now}
}

func serve(h http.Handler, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/v1/me", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerValidSession(t *testing.T) {
	rec := serve(newHandler(), "Bearer valid")
	if rec.Code != http.StatusOK || rec.Body.String() != "hello Ada" {
		t.Fatalf("got %d %q, want 200 %q", rec.Code, rec.Body.String(), "hello Ada")
	}
}

func TestHandlerMissingToken(t *testing.T) {
	if rec := serve(newHandler(), ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", rec.Code)
	}
}

func TestHandlerExpiredSession(t *testing.T) {
	h := newHandler()
	if rec := serve(h, "Bearer old"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", rec.Code)
	}
	if h.Sessions.Get("old") != nil {
		t.Fatal("an expired session should be deleted when it is presented")
	}
}

// A token the store has never issued (or has already swept) must be refused, not crash the server.
func TestHandlerUnknownToken(t *testing.T) {
	rec := serve(newHandler(), "Bearer never-issued")
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", rec.Code)
	}
}

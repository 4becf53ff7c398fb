package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"example.com/sample-service/internal/auth"
	"example.com/sample-service/internal/session"
)

func server(t *testing.T) http.Handler {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0 }
	store := session.NewStore(time.Hour, now)
	store.Put(&session.Session{Token: "ada", User: session.User{ID: "u1", Name: "Ada"}, ExpiresAt: t0.Add(time.Hour)})
	items := NewItems(Item{ID: "a", Owner: "u1", Title: "first"}, Item{ID: "b", Owner: "u2", Title: "not Ada's"},
		Item{ID: "c", Owner: "u1", Title: "second"})
	return &auth.Handler{Sessions: store, Next: Routes(items), Now: now}
}

func get(h http.Handler, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer ada")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestListOwnItems(t *testing.T) {
	rec := get(server(t), "/v1/items")
	var got []Item
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("got %d %q (%v)", rec.Code, rec.Body.String(), err)
	}
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Fatalf("got %+v, want items a and c", got)
	}
}

func TestGetItem(t *testing.T) {
	h := server(t)
	for path, want := range map[string]int{"/v1/items/a": 200, "/v1/items/b": 404, "/v1/items/zzz": 404} {
		if rec := get(h, path); rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}

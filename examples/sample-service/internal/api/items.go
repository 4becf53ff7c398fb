// Package api serves the sample-service HTTP API: items owned by the authenticated user.
package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"

	"example.com/sample-service/internal/auth"
)

// ErrNotFound is returned by the item store when an item does not exist.
var ErrNotFound = errors.New("item not found")

// Item is one stored item.
type Item struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	Title string `json:"title"`
}

// Items is an in-memory item store, safe for concurrent use.
type Items struct {
	mu    sync.Mutex
	items map[string]Item
}

// NewItems returns a store holding the given items.
func NewItems(items ...Item) *Items {
	s := &Items{items: make(map[string]Item)}
	for _, it := range items {
		s.items[it.ID] = it
	}
	return s
}

// Get returns the item with id.
func (s *Items) Get(id string) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok {
		return Item{}, ErrNotFound
	}
	return it, nil
}

// OwnedBy lists the items of owner, sorted by id.
func (s *Items) OwnedBy(owner string) []Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Item
	for _, it := range s.items {
		if it.Owner == owner {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Routes returns the API's handler; it expects auth.Handler in front of it.
func Routes(items *Items) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/items", func(w http.ResponseWriter, r *http.Request) {
		user, ok := auth.UserFrom(r.Context())
		if !ok {
			writeError(w, http.StatusUnauthorized, "not authenticated")
			return
		}
		writeJSON(w, http.StatusOK, items.OwnedBy(user.ID))
	})
	mux.HandleFunc("/v1/items/", func(w http.ResponseWriter, r *http.Request) {
		user, ok := auth.UserFrom(r.Context())
		if !ok {
			writeError(w, http.StatusUnauthorized, "not authenticated")
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/v1/items/")
		it, err := items.Get(id)
		if errors.Is(err, ErrNotFound) || (err == nil && it.Owner != user.ID) {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		writeJSON(w, http.StatusOK, it)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

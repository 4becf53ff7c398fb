package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"example.com/sample-service/internal/session"
)

type ctxKey struct{}

// UserFrom returns the authenticated user stored in ctx by the Handler.
func UserFrom(ctx context.Context) (session.User, bool) {
	u, ok := ctx.Value(ctxKey{}).(session.User)
	return u, ok
}

// Handler authenticates each request and passes it on to Next with the user in its context.
// Requests without a valid, unexpired session get 401 and never reach Next.
type Handler struct {
	Sessions *session.Store
	Next     http.Handler
	Now      func() time.Time
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, err := ParseBearer(r.Header.Get("Authorization"))
	if err != nil {
		unauthorized(w, "missing or malformed bearer token")
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	sess := h.Sessions.Get(token)
	if sess.Expired(now()) {
		h.Sessions.Delete(token)
		unauthorized(w, "session expired")
		return
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, sess.User)
	h.Next.ServeHTTP(w, r.WithContext(ctx))
}

func unauthorized(w http.ResponseWriter, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="sample-service"`)
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": reason})
}

// Package auth authenticates requests by bearer token against the session store.
//
// See docs/adr/0001-bearer-token-sessions.md.
package auth

import (
	"errors"
	"strings"
)

// ErrNoToken is returned when the Authorization header is missing or is not a bearer token.
var ErrNoToken = errors.New("auth: missing or malformed bearer token")

// ParseBearer extracts the token from an "Authorization: Bearer <token>" header value.
func ParseBearer(header string) (string, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoToken
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", ErrNoToken
	}
	return token, nil
}

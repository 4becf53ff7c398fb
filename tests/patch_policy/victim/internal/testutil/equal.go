// Package testutil holds assertions the tests share.
package testutil

import "testing"

// Equal fails the test when got != want.
func Equal(t testing.TB, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("got %d, want %d", got, want)
	}
}

//go:build !race

package listing

import "testing"

func TestNoRace(t *testing.T) {}

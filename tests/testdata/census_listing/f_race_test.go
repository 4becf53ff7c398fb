//go:build race

package listing

import "testing"

func TestRaceOnly(t *testing.T) {}

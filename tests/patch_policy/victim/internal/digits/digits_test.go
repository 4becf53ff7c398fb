package digits_test

import (
	"testing"

	"example.com/victim/internal/digits"
)

func TestCount(t *testing.T) {
	if got := digits.Count(120); got != 3 {
		t.Errorf("Count(120) = %d, want 3", got)
	}
}

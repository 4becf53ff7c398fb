package api

import "testing"

func TestTotal(t *testing.T) {
	if got := Total(1, 2, 3); got != 6 {
		t.Fatalf("Total(1, 2, 3) = %d", got)
	}
}

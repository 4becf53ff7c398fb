package store

import "testing"

func TestFine(t *testing.T) {}

func TestInc(t *testing.T) {
	var s Store
	s.Inc("a")
}

func TestAt(t *testing.T) {
	_ = At([]int{1}, 3)
}

package xt_test

import (
	"testing"

	"example.com/deps/calc"
	"example.com/deps/xt"
)

func TestTwice(t *testing.T) {
	if xt.Twice(3) != calc.Add(3, 3) {
		t.Fatal("Twice(3) != 3 + 3")
	}
}

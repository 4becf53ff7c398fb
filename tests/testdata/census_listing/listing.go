// Package listing is a fixture for the census's static listing: every kind of name and file that
// `go test -list` takes or leaves out.
package listing

import "testing"

// Add is what the tests test.
func Add(a, b int) int { return a + b }

// TestInCode is not in a _test.go file: go test never lists it.
func TestInCode(t *testing.T) {}

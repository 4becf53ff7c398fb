//go:build never

package listing

import "testing"

func TestNever(t *testing.T) {}

package testonly

import "testing"

func TestOnly(t *testing.T) {}

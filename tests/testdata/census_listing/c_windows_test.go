package listing

import "testing"

func TestWindowsOnly(t *testing.T) {}

package listing

import "testing"

func TestLinuxOnly(t *testing.T) {}

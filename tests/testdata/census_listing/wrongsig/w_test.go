package wrongsig

import "testing"

func TestFine(t *testing.T) {}

func TestFoo(t *testing.B) {}

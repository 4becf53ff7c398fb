package typeparams

import "testing"

func TestFine(t *testing.T) {}

func TestGeneric[T any](t *testing.T) {}

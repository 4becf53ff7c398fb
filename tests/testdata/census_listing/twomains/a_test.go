package twomains

import "testing"

func TestMain(m *testing.M) { m.Run() }

func TestFine(t *testing.T) {}

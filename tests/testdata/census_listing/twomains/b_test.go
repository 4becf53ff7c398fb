package twomains_test

import "testing"

func TestMain(m *testing.M) { m.Run() }

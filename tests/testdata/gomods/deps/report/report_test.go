package report

import (
	"testing"

	"example.com/deps/api"
)

func TestLine(t *testing.T) {
	if got := Line(api.Total(2, 2)); got != "total: 4" {
		t.Fatalf("got %q", got)
	}
}

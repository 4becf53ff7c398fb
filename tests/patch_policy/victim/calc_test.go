package victim

import (
	"os"
	"testing"

	"example.com/victim/internal/testutil"
)

var addCases = []struct{ a, b, want int }{{1, 2, 3}, {2, 2, 4}}

func TestAdd(t *testing.T) {
	for _, c := range addCases {
		testutil.Equal(t, Add(c.a, c.b), c.want)
	}
}

func TestSub(t *testing.T) {
	testutil.Equal(t, Sub(5, 3), 2)
}

func TestRender(t *testing.T) {
	want, err := os.ReadFile("fixtures/expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := Render(1, 2); got != string(want) {
		t.Errorf("Render(1, 2) = %q, want %q", got, want)
	}
}

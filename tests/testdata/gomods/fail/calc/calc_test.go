package calc

import (
	"fmt"
	"testing"
)

func TestAdd(t *testing.T) {
	if Add(2, 3) != 5 {
		t.Fatal("Add broken")
	}
}

func TestSub(t *testing.T) {
	cases := []struct{ a, b, want int }{{5, 3, 2}, {3, 3, 0}, {0, 0, 0}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d-%d", c.a, c.b), func(t *testing.T) {
			t.Log("checking", c.a, c.b)
			if got := Sub(c.a, c.b); got != c.want {
				t.Errorf("Sub(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
			}
		})
	}
}

func TestNoisyFailure(t *testing.T) {
	for i := 0; i < 50; i++ {
		fmt.Printf("progress line %d\n", i)
	}
	t.Error("expected failure after noise")
}

package shapes

import "testing"

func TestArea(t *testing.T) {
	if (&Circle{Radius: 1}).Area() < 3 {
		t.Fatal("too small")
	}
}

package util

import "testing"

func TestReverse(t *testing.T) {
	for _, c := range []struct{ in, want string }{{"abc", "cba"}, {"", ""}, {"héllo", "olléh"}} {
		t.Run(c.in, func(t *testing.T) {
			if got := Reverse(c.in); got != c.want {
				t.Errorf("Reverse(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestShout(t *testing.T) {
	t.Log("shouting")
	if got := Shout("hi"); got != "HI!" {
		t.Fatalf("Shout = %q", got)
	}
}

func TestSkipped(t *testing.T) {
	t.Skip("not on this platform")
}

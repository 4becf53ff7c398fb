package auth

import "testing"

func TestParseBearer(t *testing.T) {
	cases := []struct {
		header string
		want   string
		ok     bool
	}{
		{"Bearer abc123", "abc123", true},
		{"bearer abc123", "abc123", true},
		{"  Bearer   abc123  ", "abc123", true},
		{"", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearer", "", false},
		{"Bearer a b", "", false},
	}
	for _, c := range cases {
		got, err := ParseBearer(c.header)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q, ok=%v", c.header, got, err, c.want, c.ok)
		}
	}
}

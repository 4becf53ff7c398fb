// Package digits counts decimal digits. Nothing in this module imports it (other modules copy it, as
// golang.org/x/text's internal/export packages are copied into x/net): only its own tests do.
package digits

// Count is the number of decimal digits of n.
func Count(n int) int {
	c := 1
	for n >= 10 {
		n /= 10
		c++
	}
	return c
}

// Package api imports calc in its code.
package api

import "example.com/deps/calc"

// Total sums xs.
func Total(xs ...int) int {
	sum := 0
	for _, x := range xs {
		sum = calc.Add(sum, x)
	}
	return sum
}

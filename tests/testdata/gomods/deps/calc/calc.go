// Package calc is what the other packages build on.
package calc

// Add returns a + b.
func Add(a, b int) int { return a + b }

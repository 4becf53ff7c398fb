// Package calc is the root module's package.
package calc

// Add returns a + b.
func Add(a, b int) int { return a + b }

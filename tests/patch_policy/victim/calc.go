// Package victim is the target of the tampering regression tests: Add is wrong.
package victim

import "fmt"

// Add should return a+b.
func Add(a, b int) int { return a - b }

// Sub returns a-b.
func Sub(a, b int) int { return a - b }

// Render prints a sum the way fixtures/expected.txt expects it.
func Render(a, b int) string { return fmt.Sprintf("%d+%d=%d\n", a, b, Add(a, b)) }

// Package xt has an external test package that imports calc.
package xt

// Twice doubles n.
func Twice(n int) int { return 2 * n }

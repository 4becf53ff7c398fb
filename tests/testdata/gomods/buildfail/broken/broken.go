// Package broken does not compile.
package broken

// Half returns half of n.
func Half(n int) int {
	return n / two
}

// Name returns a string as an int.
func Name() int { return "name" }

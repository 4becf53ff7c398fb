// Package vetbad compiles but go vet objects.
package vetbad

import "fmt"

// Describe formats n with a wrong verb.
func Describe(n int) string { return fmt.Sprintf("%s items", n) }

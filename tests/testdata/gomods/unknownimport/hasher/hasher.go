// Package hasher imports a standard-library package that does not exist.
package hasher

import (
	"crypto/sha3x"
	"strings"
)

// Sum hashes s.
func Sum(s string) []byte { return sha3x.Sum256([]byte(strings.TrimSpace(s))) }

// Package store indexes into a map it never initialised.
package store

// Store keeps counters.
type Store struct{ counts map[string]int }

// Inc increments a counter; it panics because counts is nil.
func (s *Store) Inc(key string) { s.counts[key]++ }

// At returns the i-th element.
func At(xs []int, i int) int { return xs[i] }

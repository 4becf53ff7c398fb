// Package memory allocates without bound; RLIMIT_AS (or the watchdog) must stop it.
package memory

import "testing"

func TestAllocate(t *testing.T) {
	var keep [][]byte
	for i := 0; i < 1024; i++ {
		b := make([]byte, 256<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	t.Errorf("ESCAPED: allocated %d MiB", len(keep)*256)
}

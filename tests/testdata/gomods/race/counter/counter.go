// Package counter increments without a lock.
package counter

import "sync"

// Count increments a shared int from n goroutines without synchronisation.
func Count(n int) int {
	total := 0
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			total++
		}()
	}
	wg.Wait()
	return total
}

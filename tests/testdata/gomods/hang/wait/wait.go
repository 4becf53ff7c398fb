// Package wait blocks forever.
package wait

// Forever waits on a channel nobody writes to.
func Forever() { select {} }

// Package flood runs a flood of subtests; the runner's parser must stay bounded.
package flood

import (
	"fmt"
	"testing"
)

func TestFlood(t *testing.T) {
	for i := 0; i < 20000; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if i%10000 == 1 {
				t.Errorf("failure %d", i)
			}
		})
	}
}

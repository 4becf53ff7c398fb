// Package bomb starts processes without end; the sandbox's watchdog (or RLIMIT_NPROC) must stop it.
package bomb

import (
	"os/exec"
	"testing"
)

func TestForkBomb(t *testing.T) {
	started := 0
	for i := 0; i < 100000; i++ {
		if err := exec.Command("/bin/sleep", "4242.6").Start(); err != nil {
			t.Logf("stopped after %d processes: %v", started, err)
			return
		}
		started++
	}
	t.Errorf("ESCAPED: started %d processes", started)
}

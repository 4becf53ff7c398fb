package daemon

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestEscapes starts a process in a new session (outside the test's process group), then hangs:
// a hard timeout must still take the escaped process down. Its argument is a marker to look for.
func TestEscapes(t *testing.T) {
	cmd := exec.Command("sleep", "4242.5")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	time.Sleep(time.Hour)
}

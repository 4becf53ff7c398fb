package escape

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReachTheBuildSandbox: the socket in the BUILD sandbox on which go's -exec program hands test
// binaries to sandboxes started ahead, and go's work directory, where go links the binaries it runs
// next (rewriting one would run code outside this binary's sandbox).
func TestReachTheBuildSandbox(t *testing.T) {
	for _, network := range []string{"unixpacket", "unix"} {
		if c, err := net.DialTimeout(network, "/tmp/tests.sock", 2*time.Second); err == nil {
			c.Close()
			t.Errorf("ESCAPED: connected to the BUILD sandbox's socket (%s)", network)
		}
	}
	_ = filepath.WalkDir("/tmp", func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type()&os.ModeSocket != 0 {
			t.Errorf("ESCAPED: a socket is visible: %s", path)
		}
		return nil
	})
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	if f, err := os.OpenFile(self, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Errorf("ESCAPED: opened its own binary %s for writing", self)
	}
	// go's work directory is in this view as mounts under /tmp/go: the binary's own directory, or
	// all of it in a sandbox started ahead. Every one of them must be read-only.
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("mountinfo: %v", err)
	}
	var mounts []string
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == "/tmp/go" || strings.HasPrefix(f[4], "/tmp/go/")) {
			mounts = append(mounts, f[4])
		}
	}
	if len(mounts) == 0 || !strings.HasPrefix(self, mounts[0]) {
		t.Fatalf("go's work directory is not where this case looks for it (%s, mounts %v)", self, mounts)
	}
	for _, dir := range mounts {
		if os.WriteFile(filepath.Join(dir, "goresolve-escape"), []byte("x"), 0o755) == nil {
			t.Errorf("ESCAPED: wrote into go's work directory %s", dir)
		}
	}
}

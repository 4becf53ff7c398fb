package escape

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func mountpoints(t *testing.T) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("mountinfo: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			out = append(out, fields[4])
		}
	}
	return out
}

// TestUnmountEverything: the reproduction unmounted the hiding tmpfs and the read-only binds.
func TestUnmountEverything(t *testing.T) {
	mps := mountpoints(t)
	if len(mps) < 3 {
		t.Fatalf("saw only %d mounts", len(mps))
	}
	for i := len(mps) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mps[i], syscall.MNT_DETACH); err == nil {
			t.Errorf("ESCAPED: unmounted %s", mps[i])
		}
	}
}

// TestRemountReadWrite: make the toolchain and / writable again, then write into them.
func TestRemountReadWrite(t *testing.T) {
	goroot := runtime.GOROOT()
	for _, p := range []string{"/", "/usr", goroot, "/etc"} {
		if err := syscall.Mount("", p, "", syscall.MS_REMOUNT|syscall.MS_BIND, ""); err == nil {
			t.Errorf("ESCAPED: remounted %s read-write", p)
		}
		if err := syscall.Mount(p, p, "", syscall.MS_BIND, ""); err == nil {
			t.Errorf("ESCAPED: bind-mounted %s", p)
		}
		target := filepath.Join(p, "goresolve-escape")
		if err := os.WriteFile(target, []byte("x"), 0o644); err == nil {
			t.Errorf("ESCAPED: wrote %s", target)
		}
	}
}

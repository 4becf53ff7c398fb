package escape

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func status(t *testing.T) map[string]string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestSetuidAndPrivileges: non-zero uid, no capabilities, no_new_privs, seccomp; a setuid-root
// program runs without gaining root.
func TestSetuidAndPrivileges(t *testing.T) {
	tg := Load(t)
	st := status(t)
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		t.Errorf("ESCAPED: running as uid 0")
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd", "CapAmb"} {
		if st[k] != "0000000000000000" {
			t.Errorf("ESCAPED: %s = %s", k, st[k])
		}
	}
	if st["NoNewPrivs"] != "1" {
		t.Errorf("ESCAPED: no_new_privs is %q", st["NoNewPrivs"])
	}
	if st["Seccomp"] != "2" {
		t.Errorf("ESCAPED: no seccomp filter (Seccomp: %q)", st["Seccomp"])
	}
	if tg.Setuid != "" {
		out, err := exec.Command(tg.Setuid).Output()
		euid, perr := strconv.Atoi(strings.TrimSpace(string(out)))
		if err == nil && perr == nil && euid == 0 {
			t.Errorf("ESCAPED: %s ran with euid 0", tg.Setuid)
		}
		t.Logf("setuid probe: %q %v", out, err)
	}
	for _, p := range []string{"/usr/bin/su", "/usr/bin/mount", "/usr/bin/passwd"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSetuid != 0 {
			var sfs syscall.Statfs_t
			if err := syscall.Statfs(filepath.Dir(p), &sfs); err == nil && sfs.Flags&0x2 == 0 { // ST_NOSUID
				t.Errorf("ESCAPED: %s is setuid on a mount without nosuid", p)
			}
		}
	}
}

// TestPtraceTheGoProcess: the go test parent is in another PID namespace, and ptrace is denied.
func TestPtraceTheGoProcess(t *testing.T) {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		if b, err := os.ReadFile(c); err == nil && strings.TrimSpace(string(b)) == "go" {
			t.Errorf("ESCAPED: the go process is visible: %s", c)
		}
	}
	for _, pid := range []int{os.Getppid(), 1} {
		if err := syscall.PtraceAttach(pid); err == nil {
			syscall.PtraceDetach(pid)
			t.Errorf("ESCAPED: attached to pid %d", pid)
		}
	}
	if err := syscall.Unshare(syscall.CLONE_NEWUSER); err == nil {
		t.Errorf("ESCAPED: created a user namespace")
	}
	setns := map[string]uintptr{"amd64": 308, "arm64": 268}[runtime.GOARCH]
	if _, _, errno := syscall.RawSyscall(setns, 0, 0, 0); setns != 0 && errno != syscall.EPERM {
		t.Errorf("ESCAPED: setns is not denied (%v)", errno)
	}
}

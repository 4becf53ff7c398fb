// Command execwrap is go-test-runner's `go test -exec` wrapper: it gives each test binary a private
// mount namespace in which the shared caches are overlaid (or read-only), then execs the binary.
// It does what nsinit.py does for these keys, without a Python start per test binary.
//
//	execwrap @SPEC.json -- /path/to/pkg.test -test.v ...
//
// SPEC: {"new_mount_ns": bool, "readonly": [dir], "overlay": [[dir, upper, work]], "env": {k: v}}.
// It exits 125 when it cannot set up; it never runs the binary half-confined.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

type spec struct {
	NewMountNS bool              `json:"new_mount_ns"`
	Readonly   []string          `json:"readonly"`
	Overlay    [][3]string       `json:"overlay"`
	Env        map[string]string `json:"env"`
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "sandbox setup failed: %v\n", err)
	os.Exit(125)
}

func main() {
	// The mount namespace belongs to this thread: unshare, mount and exec all happen on it.
	runtime.LockOSThread()
	args := os.Args
	if len(args) < 4 || args[2] != "--" || !strings.HasPrefix(args[1], "@") {
		fail(fmt.Errorf("usage: execwrap @SPEC -- command..."))
	}
	raw, err := os.ReadFile(args[1][1:])
	if err != nil {
		fail(err)
	}
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		fail(err)
	}
	if s.NewMountNS {
		if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
			fail(fmt.Errorf("unshare mount namespace: %w", err))
		}
	}
	for _, p := range s.Readonly {
		if err := syscall.Mount(p, p, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			fail(fmt.Errorf("bind %s: %w", p, err))
		}
		flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV)
		if err := syscall.Mount("", p, "", flags, ""); err != nil {
			fail(fmt.Errorf("read-only %s: %w", p, err))
		}
	}
	for _, o := range s.Overlay {
		opts := "lowerdir=" + o[0] + ",upperdir=" + o[1] + ",workdir=" + o[2]
		if err := syscall.Mount("overlay", o[0], "overlay", 0, opts); err != nil {
			fail(fmt.Errorf("overlay %s: %w", o[0], err))
		}
	}
	env := make([]string, 0, len(os.Environ())+len(s.Env))
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); s.Env[name] == "" {
			env = append(env, kv)
		}
	}
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	path := args[3]
	if !strings.Contains(path, "/") {
		if path, err = exec.LookPath(path); err != nil {
			fail(err)
		}
	}
	fail(syscall.Exec(path, args[3:], env))
}

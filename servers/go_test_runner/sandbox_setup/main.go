// Command sandbox-setup mounts what bubblewrap 0.8 cannot (overlays), in a fresh user and mount
// namespace made by `unshare --user --map-root-user --mount`, then execs bubblewrap. It does with
// system calls, in one process, what a shell would do with one `mount` or `mkdir` process per step.
// Standard library only; built once with CGO_ENABLED=0 by go-test-runner.
//
//	sandbox-setup build TARGET LOWERS UPPER WORK FILTER BWRAP [OPTIONS...]
//
// The BUILD sandbox, once per run, on the host: an overlay of the shared build cache (LOWERS,
// colon-separated and read-only) with the run's layer (UPPER) at TARGET, unless LOWERS is empty;
// the seccomp filter FILTER opened as descriptor 3; then BWRAP with OPTIONS.
//
//	sandbox-setup test LAYER SIZE_MB GOCACHE ASSETS SRC BINARY [ARGS...]
//
// The TEST sandbox, once per test binary (`go test -exec`), inside the BUILD sandbox: a tmpfs at
// LAYER with overlays on it over the worktree SRC and the build cache GOCACHE (the binary's private
// writable layers, gone with it), then bubblewrap with the filter ASSETS/test.bpf on descriptor 3
// and the fixed options ASSETS/test.args on descriptor 4.
//
//	sandbox-setup serve-tests SOCK LAYER SIZE_MB GOCACHE ASSETS SRC BINS
//	sandbox-setup exec SOCK BINS MAXLINE N FALLBACK... BINARY [ARGS...]
//
// TEST sandboxes started ahead of their binary, handed over by go's -exec program (ahead.go).
//
//	sandbox-setup wait
//
// Inside a BUILD sandbox started ahead of its run: read the command from stdin (NUL-separated
// arguments, the program's absolute path first) and exec it; stdin closed with nothing on it means
// the sandbox was not needed, and it exits.
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) >= 8 && os.Args[1] == "build" {
		build(os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7], os.Args[8:])
	}
	if len(os.Args) == 2 && os.Args[1] == "wait" {
		wait()
	}
	if len(os.Args) >= 8 && os.Args[1] == "test" {
		test(os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7], os.Args[8:])
	}
	if len(os.Args) == 9 && os.Args[1] == "serve-tests" {
		serveTests(os.Args[2], os.Args[3:])
	}
	if len(os.Args) == 8 && os.Args[1] == "test-ahead" {
		testAhead(os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7])
	}
	if len(os.Args) == 2 && os.Args[1] == "receive" {
		receive()
	}
	if len(os.Args) >= 7 && os.Args[1] == "exec" {
		execTest(os.Args[2], os.Args[3], os.Args[4], os.Args[5:])
	}
	fail("usage: sandbox-setup build TARGET LOWERS UPPER WORK FILTER BWRAP [OPTIONS...] | " +
		"test LAYER SIZE_MB GOCACHE ASSETS SRC BINARY [ARGS...] | wait | " +
		"serve-tests SOCK LAYER SIZE_MB GOCACHE ASSETS SRC BINS | exec SOCK BINS MAXLINE N FALLBACK... BINARY [ARGS...]")
}

func build(target, lowers, upper, work, filter, bwrap string, options []string) {
	if lowers != "" {
		mount("overlay", target, "overlay", "lowerdir="+lowers+",upperdir="+upper+",workdir="+work)
	}
	place(filter, 3)
	run(bwrap, options)
}

func test(layer, size, gocache, assets, src, binary string, args []string) {
	layers(layer, size, gocache, src)
	wd, err := os.Getwd()
	must("read the working directory", err)
	bindir := filepath.Dir(binary)
	options := testOptions(assets, src, gocache, wd, bindir)
	run(lookBwrap(), append(append(options, binary), args...))
}

// testAhead is test for a binary not yet known: the same layers and view, with all of go's work
// directory BINS read-only (the binary will be in it) and `sandbox-setup receive` as the program,
// which waits on descriptor 5 for the binary's command and standard streams (serveTests sends them).
func testAhead(layer, size, gocache, assets, src, bins string) {
	layers(layer, size, gocache, src)
	self := filepath.Join(assets, "sandbox-setup")
	run(lookBwrap(), append(testOptions(assets, src, gocache, src, bins, self), self, "receive"))
}

// layers mounts the binary's private writable layers: a tmpfs at LAYER with overlays on it over
// the worktree SRC and the build cache GOCACHE.
func layers(layer, size, gocache, src string) {
	mount("tmpfs", layer, "tmpfs", "size="+size+"m,mode=755")
	for _, dir := range []string{"su", "sw", "cu", "cw"} {
		must("make the layer", os.Mkdir(filepath.Join(layer, dir), 0o755))
	}
	// go's 256 cache directories exist in the layer beforehand: copy-up keeps a directory's owner,
	// and the shared cache's may belong to a user this namespace does not map.
	for n := 0; n < 256; n++ {
		must("make the layer", os.Mkdir(filepath.Join(layer, "cu", fmt.Sprintf("%02x", n)), 0o755))
	}
	mount("overlay", src, "overlay", "lowerdir="+src+",upperdir="+layer+"/su,workdir="+layer+"/sw")
	mount("overlay", gocache, "overlay", "lowerdir="+gocache+",upperdir="+layer+"/cu,workdir="+layer+"/cw")
}

// testOptions are bubblewrap's options for a TEST sandbox that runs from wd with the paths readOnly
// bound read-only, up to and including "--"; the seccomp filter and the fixed options are placed on
// descriptors 3 and 4.
func testOptions(assets, src, gocache, wd string, readOnly ...string) []string {
	place(filepath.Join(assets, "test.bpf"), 3)
	place(filepath.Join(assets, "test.args"), 4)
	options := []string{"--args", "4", "--seccomp", "3", "--bind", src, src, "--bind", gocache, gocache}
	for _, path := range readOnly {
		options = append(options, "--ro-bind", path, path)
	}
	return append(options, "--remount-ro", "/", "--chdir", wd, "--")
}

func lookBwrap() string {
	bwrap, err := exec.LookPath("bwrap")
	must("find bwrap", err)
	return bwrap
}

func wait() {
	const max = 1 << 20
	data, err := io.ReadAll(io.LimitReader(os.Stdin, max+1))
	must("read the command", err)
	if len(data) > max {
		fail("the command is over 1 MiB")
	}
	if len(data) == 0 {
		os.Exit(0)
	}
	argv := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	if !filepath.IsAbs(argv[0]) {
		fail("the command's program must be an absolute path: " + argv[0])
	}
	must("start "+argv[0], syscall.Exec(argv[0], argv, os.Environ()))
}

func mount(source, target, fstype, options string) {
	must("mount "+fstype+" on "+target, syscall.Mount(source, target, fstype, 0, options))
}

// place opens path read-only as descriptor fd, which the exec'd program inherits.
func place(path string, fd int) {
	got, err := syscall.Open(path, syscall.O_RDONLY, 0) // no O_CLOEXEC
	must("open "+path, err)
	if got == fd {
		return
	}
	must("place "+path, syscall.Dup3(got, fd, 0))
	must("place "+path, syscall.Close(got))
}

func run(bwrap string, options []string) {
	must("start "+bwrap, syscall.Exec(bwrap, append([]string{"bwrap"}, options...), os.Environ()))
}

func must(what string, err error) {
	if err != nil {
		fail(what + ": " + err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "go-test-runner sandbox-setup: "+msg)
	os.Exit(125)
}

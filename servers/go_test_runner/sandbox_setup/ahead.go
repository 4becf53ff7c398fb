package main

// TEST sandboxes started ahead of their binary. Inside the BUILD sandbox, `serve-tests` keeps one
// TEST sandbox started (`test-ahead`: layers, view, seccomp, all made) with `receive` waiting in
// it. go's -exec program, `exec`, hands it the binary's command and standard streams over a unix
// socket that exists only in the BUILD sandbox's /tmp, and exits with the binary's exit code. So a
// test binary does not wait for its sandbox's start; what test code can see and do is the same as
// in a sandbox started for it, except that all of go's work directory is readable, not only the
// binary's own directory. When no sandbox can be handed over, `exec` starts one as before.
//
//	sandbox-setup serve-tests SOCK LAYER SIZE_MB GOCACHE ASSETS SRC BINS
//	sandbox-setup exec SOCK BINS MAXLINE N FALLBACK(N words) BINARY [ARGS...]
//	sandbox-setup test-ahead LAYER SIZE_MB GOCACHE ASSETS SRC BINS   (started by serve-tests)
//	sandbox-setup receive                                            (inside the TEST sandbox)

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	maxRequest = 200 << 10 // one datagram; a larger command takes the fallback
	handOver   = 5         // the descriptor `test-ahead` and `receive` get the request on
	// A taken sandbox is replaced after this delay: a run with one test binary (the common case of a
	// debug loop) is over by then and never starts a second one; later binaries of a larger run find
	// it started.
	replaceAfter = 150 * time.Millisecond
	useFallback  = 'f' // answers: start your own sandbox,
	exited       = 'r' // or the binary's exit code (4 bytes) follows
)

type request struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

type started struct {
	cmd  *exec.Cmd
	conn *net.UnixConn // our end of its socket pair
}

type pool struct {
	args     []string // test-ahead's arguments
	mu       sync.Mutex
	ready    *started // at most one sandbox waits
	starting bool
}

func serveTests(sock string, args []string) {
	_ = os.Remove(sock)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	must("listen on "+sock, err)
	p := &pool{args: args}
	go p.replenish(0)
	for {
		conn, err := ln.AcceptUnix()
		must("accept", err)
		go p.serve(conn)
	}
}

// start starts one TEST sandbox ahead; nil when it cannot.
func (p *pool) start() *started {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "hand-over"), os.NewFile(uintptr(fds[1]), "hand-over")
	defer theirs.Close()
	self, err := os.Executable()
	if err != nil {
		mine.Close()
		return nil
	}
	argv := append([]string{"--user", "--map-root-user", "--mount", "--", self, "test-ahead"}, p.args...)
	cmd := exec.Command("unshare", argv...)
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{nil, nil, theirs} // descriptor 5
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		mine.Close()
		return nil
	}
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil
	}
	return &started{cmd: cmd, conn: c.(*net.UnixConn)}
}

// replenish starts one sandbox after `after`, unless one is ready or being started.
func (p *pool) replenish(after time.Duration) {
	time.Sleep(after)
	p.mu.Lock()
	if p.ready != nil || p.starting {
		p.mu.Unlock()
		return
	}
	p.starting = true
	p.mu.Unlock()
	s := p.start()
	p.mu.Lock()
	p.starting = false
	p.ready = s
	p.mu.Unlock()
}

func (p *pool) take() *started {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.ready
	p.ready = nil
	return s
}

// hand sends the request and the binary's standard streams to the sandbox; one that cannot take
// them (its set-up failed) is killed.
func (s *started) hand(request []byte, fds []int) bool {
	defer s.conn.Close()
	if _, _, err := s.conn.WriteMsgUnix(request, syscall.UnixRights(fds...), nil); err != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		return false
	}
	return true
}

// serve hands one binary's request to a started sandbox and answers with the binary's exit code,
// or tells the caller to start its own sandbox.
func (p *pool) serve(conn *net.UnixConn) {
	defer conn.Close()
	buf := make([]byte, maxRequest)
	oob := make([]byte, syscall.CmsgSpace(3*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	fds := received(oob[:oobn])
	var s *started
	if err == nil && len(fds) == 3 {
		s = p.take()
		go p.replenish(replaceAfter)
	}
	if s != nil && !s.hand(buf[:n], fds) {
		s = nil
	}
	for _, fd := range fds { // the sandbox has its own copies now: go must see the streams close
		_ = syscall.Close(fd)
	}
	if s == nil {
		_, _ = conn.Write([]byte{useFallback})
		return
	}
	// The caller gone (go killed it) kills the sandbox, as killing its own sandbox would.
	done := make(chan struct{})
	go func() {
		one := make([]byte, 1)
		_, _ = conn.Read(one)
		select {
		case <-done:
		default:
			_ = s.cmd.Process.Kill()
		}
	}()
	err = s.cmd.Wait()
	close(done)
	msg := []byte{exited, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(msg[1:], uint32(exitCode(err)))
	_, _ = conn.Write(msg)
}

// exitCode is the code a shell would report for a process that ended with err (from Wait).
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case !errors.As(err, &exit):
		return 125
	}
	if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return 128 + int(status.Signal())
	}
	return exit.ExitCode()
}

func received(oob []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		got, err := syscall.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

// receive runs inside a TEST sandbox started ahead: it waits for the binary's request and standard
// streams on descriptor 5, takes them as its own, and execs the binary.
func receive() {
	buf := make([]byte, maxRequest)
	oob := make([]byte, syscall.CmsgSpace(3*4))
	n, oobn, _, _, err := syscall.Recvmsg(handOver, buf, oob, 0)
	if err != nil || n == 0 {
		os.Exit(0) // not needed: the BUILD sandbox is gone
	}
	fds := received(oob[:oobn])
	if len(fds) != 3 {
		fail("the request came without the binary's standard streams")
	}
	var req request
	must("read the request", json.Unmarshal(buf[:n], &req))
	for i, fd := range fds {
		must("take the standard streams", syscall.Dup3(fd, i, 0))
	}
	for _, fd := range append(fds, handOver) {
		if fd > 2 {
			_ = syscall.Close(fd)
		}
	}
	if len(req.Argv) == 0 {
		fail("the request has no command")
	}
	must("enter "+req.Dir, syscall.Chdir(req.Dir))
	must("start "+req.Argv[0], syscall.Exec(req.Argv[0], req.Argv, req.Env))
}

// execTest is go's -exec program: the binary in a TEST sandbox started ahead when `serve-tests`
// has one, else FALLBACK (the command that starts a TEST sandbox for it) with the binary appended.
// Either way the binary's stdout and stderr reach go through relay, which cuts lines longer than
// MAXLINE bytes: go holds a line until its end, so one endless line would grow go without bound.
func execTest(sock, bins, maxLine string, rest []string) {
	limit, err := strconv.Atoi(maxLine)
	count, err2 := strconv.Atoi(rest[0])
	if err != nil || err2 != nil || limit < 1 || count < 1 || len(rest) < count+2 {
		fail("usage: sandbox-setup exec SOCK BINS MAXLINE N FALLBACK... BINARY [ARGS...]")
	}
	fallback, command := rest[1:count+1], rest[count+1:]
	// GOTMPDIR is go's work directory (BINS), read-only for test code; a test's t.TempDir goes under
	// GOTMPDIR when it is set, so test code gets its own temporary directory there.
	must("set GOTMPDIR", os.Setenv("GOTMPDIR", os.Getenv("TMPDIR")))
	streams, relayed := relayStreams(limit)
	code, ok := handTo(sock, bins, command, streams)
	if !ok {
		program, err := exec.LookPath(fallback[0])
		must("find "+fallback[0], err)
		cmd := exec.Command(program, append(fallback[1:], command...)...)
		cmd.Args[0] = fallback[0]
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, streams[1], streams[2]
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		must("start "+program, cmd.Start())
		code = exitCode(cmd.Wait())
	}
	streams[1].Close()
	streams[2].Close()
	relayed.wait()
	os.Exit(code)
}

// cutMark ends a line the relay cut (go-test-runner marks the run's output truncated when it sees it).
const cutMark = "[go-test-runner: line cut at "

// relays copy the binary's output streams to ours; wait returns once each reached its end, or a
// moment after the binary exited when a process it left behind still holds one open.
type relays struct {
	done  chan struct{}
	count int
}

func (r relays) wait() {
	timer := time.NewTimer(2 * time.Second)
	defer timer.Stop()
	for i := 0; i < r.count; i++ {
		select {
		case <-r.done:
		case <-timer.C:
			return
		}
	}
}

// relayStreams makes the binary's stdout and stderr (the write ends returned, with our stdin
// first) and starts copying each to ours with lines cut at limit bytes. When our stdout and
// stderr are one pipe (go test gives a test binary one pipe for both), the binary gets one pipe
// for both too: two would lose the order of its writes, and test2json reads that order (a data
// race report on stderr belongs to the test whose "=== RUN" line on stdout came before it).
func relayStreams(limit int) ([3]*os.File, relays) {
	outs := []*os.File{os.Stdout, os.Stderr}
	if sameFile(os.Stdout, os.Stderr) {
		outs = outs[:1]
	}
	r := relays{done: make(chan struct{}, len(outs)), count: len(outs)}
	streams := [3]*os.File{os.Stdin}
	for i, out := range outs {
		read, write, err := os.Pipe()
		must("make a pipe", err)
		streams[i+1] = write
		go func() {
			relay(read, out, limit)
			read.Close()
			r.done <- struct{}{}
		}()
	}
	if len(outs) == 1 {
		streams[2] = streams[1]
	}
	return streams, r
}

// sameFile tells whether a and b are one open file (a pipe, a terminal, a file) by device and inode.
func sameFile(a, b *os.File) bool {
	var sa, sb syscall.Stat_t
	if syscall.Fstat(int(a.Fd()), &sa) != nil || syscall.Fstat(int(b.Fd()), &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// relay copies in to out; past limit bytes a line is cut: the rest up to its newline is dropped
// and a line with cutMark and the dropped size follows the kept part.
func relay(in io.Reader, out io.Writer, limit int) {
	buf := make([]byte, 64<<10)
	length, dropped := 0, 0 // of the current line: bytes seen, bytes dropped
	for {
		n, err := in.Read(buf)
		chunk := buf[:n]
		for len(chunk) > 0 {
			end := bytes.IndexByte(chunk, '\n')
			part := chunk
			if end >= 0 {
				part = chunk[:end+1]
			}
			chunk = chunk[len(part):]
			keep := part
			if room := limit - length; len(part) > room && !(end >= 0 && len(part)-1 <= room) {
				keep = part[:max(room, 0)]
				dropped += len(part) - len(keep)
			}
			length += len(part)
			if len(keep) > 0 {
				_, _ = out.Write(keep)
			}
			if end >= 0 {
				if dropped > 0 {
					_, _ = fmt.Fprintf(out, "\n%s%d bytes: %d bytes dropped]\n", cutMark, limit, dropped)
				}
				length, dropped = 0, 0
			}
		}
		if err != nil {
			if dropped > 0 {
				_, _ = fmt.Fprintf(out, "\n%s%d bytes: %d bytes dropped]\n", cutMark, limit, dropped)
			}
			return
		}
	}
}

// handTo sends the command and the standard streams to serve-tests, then waits for the binary's
// exit code; ok is false when the caller must start a sandbox itself.
func handTo(sock, bins string, command []string, streams [3]*os.File) (code int, ok bool) {
	binaryPath, err := filepath.Abs(command[0])
	if err != nil || !strings.HasPrefix(binaryPath, bins+"/") {
		return 0, false
	}
	dir, err := os.Getwd()
	if err != nil {
		return 0, false
	}
	body, err := json.Marshal(request{Argv: append([]string{binaryPath}, command[1:]...), Env: os.Environ(), Dir: dir})
	if err != nil || len(body) > maxRequest {
		return 0, false
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		return 0, false
	}
	defer conn.Close()
	fds := syscall.UnixRights(int(streams[0].Fd()), int(streams[1].Fd()), int(streams[2].Fd()))
	if _, _, err := conn.WriteMsgUnix(body, fds, nil); err != nil {
		return 0, false
	}
	answer := make([]byte, 5)
	n, err := conn.Read(answer)
	switch {
	case err == nil && n == 1 && answer[0] == useFallback:
		return 0, false
	case err == nil && n == 5 && answer[0] == exited:
		return int(binary.BigEndian.Uint32(answer[1:])), true
	}
	fail("the test sandbox started ahead gave no exit code")
	return 0, false
}

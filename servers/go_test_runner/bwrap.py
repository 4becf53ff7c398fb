"""The allow-list view test code runs in, as bubblewrap arguments. Pure: paths in, argument lists out.

Two sandboxes, one inside the other (sandbox.py starts them):

    unshare --user --map-root-user --mount --pid --fork --kill-child --mount-proc   (private PID ns + /proc)
      sandbox-setup build: overlay the shared build cache (lower, read-only) with this run's layer
        bwrap [BUILD view, BUILD seccomp] sh (end marker) go test -json -exec='unshare ... test' ...
          unshare --user --map-root-user --mount sandbox-setup test, once per test binary (go's -exec):
            a tmpfs layer over the worktree and the build cache
              bwrap [TEST view, TEST seccomp, --disable-userns] pkg.test ...

Next to `go`, `sandbox-setup serve-tests` keeps one TEST sandbox started ahead (the same command,
with `receive` waiting in it instead of the binary); go's -exec program, `sandbox-setup exec`, hands
it the binary's command and standard streams over a unix socket in the BUILD view's /tmp, so a
binary does not wait for its sandbox's start, and starts one itself when none is ready.

`sandbox-setup` (sandbox_setup/main.go, compiled once) makes the overlays bubblewrap 0.8 cannot.

The BUILD sandbox holds `go` and its compilers; it sees the toolchain and system directories
read-only, a minimal /etc, /dev/{null,zero,urandom}, the worktree read-only at `/src/<repo>`, the
module cache read-only, the build cache through its overlay, and a private tmpfs at /tmp (GOTMPDIR,
HOME). The TEST sandbox is built from that view by a nested bubblewrap: its own user, PID, network,
IPC and UTS namespaces, its own /proc, a fresh /tmp, and private writable layers over the worktree
and the build cache that vanish when the binary exits. No host home, no server code or
interpreter, no other worktree, no host /tmp, no unix socket of the host exists in either view.
Every mount is made before the sandboxed process starts; it runs as uid 1000 with no capabilities,
`no_new_privs`, and a seccomp filter (seccomp.py), and cannot create user namespaces, so it cannot
undo a mount. The BUILD sandbox's processes are in another PID namespace than test code: there is no
`/proc/<go pid>/root` to reach.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

UID = 1000
ASSETS = "/sandbox"
LAYER = "/layer"
SRC = "/src"
GOCACHE = "/cache/go-build"
TMP = "/tmp"  # noqa: S108 - inside the view: the sandbox's private tmpfs, not the host's /tmp
HOME = f"{TMP}/home"
BINS = f"{TMP}/go"  # GOTMPDIR: go links test binaries under it
TESTS_SOCKET = f"{TMP}/tests.sock"  # `sandbox-setup serve-tests` listens here, in the BUILD view only
SETUP = f"{ASSETS}/sandbox-setup"  # the compiled program that mounts the layers (sandbox_setup/)
# Files of /etc a Go build or test may read; nothing else of /etc exists in the view (no shadow).
ETC_FILES = (
    "hosts",
    "nsswitch.conf",
    "ld.so.cache",
    "localtime",
    "protocols",
    "services",
    "mime.types",
    "os-release",
    "ssl/certs",
    "alternatives",
)
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


@dataclass(frozen=True)
class Layout:
    """Host paths the views are made of (decided once, when the runner starts)."""

    goroot: Path
    assets: Path
    gomodcache: Path
    scratch_mb: int
    hidden: tuple[Path, ...]  # inside a system directory but not for test code: covered by an empty tmpfs
    max_line: int = 64 << 10  # test output lines longer than this are cut on their way to go (`sandbox-setup exec`)

    def system_args(self) -> list[str]:
        """Read-only system directories (symlinks such as /bin -> usr/bin kept), the toolchain, /dev."""
        args: list[str] = []
        for name in _SYSTEM:
            path = Path(name)
            if path.is_symlink():
                args += ["--symlink", str(path.readlink()), name]
            elif path.is_dir():
                args += ["--ro-bind", name, name]
        for path in self.hidden:
            args += ["--tmpfs", str(path)]
        args += ["--ro-bind", str(self.goroot), str(self.goroot)]  # its mount point may be in a hidden path
        for path in self.hidden:
            args += ["--remount-ro", str(path)]
        for dev in ("null", "zero", "urandom"):
            args += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
        return args

    def build_args(self, *, worktree: Path, inside: str, gocache: Path) -> list[str]:
        """bubblewrap options of the BUILD sandbox (followed by `--seccomp 3 -- go ...`)."""
        args = [
            *_COMMON,
            *self.system_args(),
            "--dir",
            "/etc",
            "--ro-bind",
            str(self.assets / "passwd"),
            "/etc/passwd",
            "--ro-bind",
            str(self.assets / "group"),
            "/etc/group",
        ]
        for name in ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += [
            "--bind",
            "/proc",
            "/proc",  # the private PID namespace's own /proc (mounted by unshare)
            "--size",
            str(self.scratch_mb << 20),
            "--tmpfs",
            TMP,
            "--dir",
            HOME,
            "--dir",
            BINS,
            "--ro-bind",
            str(self.assets),
            ASSETS,
            "--ro-bind",
            str(worktree),
            inside,
            "--bind",
            str(gocache),
            GOCACHE,
            "--ro-bind",
            str(self.gomodcache),
            str(self.gomodcache),
            "--dir",
            LAYER,
            "--remount-ro",
            "/",
            "--chdir",
            inside,
        ]
        return args

    def test_args(self) -> list[str]:
        """The fixed part of the TEST sandbox's options (written to `test.args`, read with `--args`)."""
        args = [*_COMMON, "--unshare-pid", "--unshare-cgroup-try", "--disable-userns", *self.system_args()]
        args += ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--size", str(self.scratch_mb << 20)]
        args += ["--tmpfs", TMP, "--dir", HOME, "--ro-bind", str(self.gomodcache), str(self.gomodcache)]
        return args

    def test_exec(self, inside: str) -> str:
        """The `go test -exec` value for a worktree seen at `inside`; go appends the binary and its
        arguments. `sandbox-setup exec` hands the binary to a TEST sandbox started ahead by
        `serve_tests` when there is one; else it starts `unshare` (no shell in between), which runs
        `sandbox-setup test` (layers, then bubblewrap)."""
        return " ".join(handed_over(self.test_chain(inside), self.max_line))

    def test_chain(self, inside: str) -> list[str]:
        """The command that starts a TEST sandbox for a binary (appended to it) on its own."""
        return ["unshare", "--user", "--map-root-user", "--mount", "--", *self._test_setup("test", inside)]

    def serve_tests(self, inside: str) -> list[str]:
        """`sandbox-setup serve-tests` for a worktree seen at `inside`, without the program's own name:
        the BUILD sandbox's shell starts it next to `go` (sandbox.py)."""
        return [TESTS_SOCKET, *self._test_setup("serve-tests", inside)[2:], BINS]

    def _test_setup(self, mode: str, inside: str) -> list[str]:
        return [SETUP, mode, LAYER, str(self.scratch_mb), GOCACHE, ASSETS, inside]


def handed_over(fallback: list[str], max_line: int) -> list[str]:
    """`sandbox-setup exec`: a binary (appended) handed to a TEST sandbox started ahead, else `fallback`;
    its output lines are cut at `max_line` bytes on their way to go (a cut line is followed by `CUT_MARK`)."""
    return [SETUP, "exec", TESTS_SOCKET, BINS, str(max_line), str(len(fallback)), *fallback]


CUT_MARK = b"[go-test-runner: line cut at "  # sandbox_setup/ahead.go writes it after a line it cut


_COMMON = [
    "--unshare-user",
    "--unshare-ipc",
    "--unshare-net",
    "--unshare-uts",
    "--uid",
    str(UID),
    "--gid",
    str(UID),
    "--hostname",
    "sandbox",
    "--cap-drop",
    "ALL",
    "--new-session",
    "--die-with-parent",
]


def passwd() -> str:
    return f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\ngotest:x:{UID}:{UID}::{HOME}:/bin/sh\n"


def group() -> str:
    return f"root:x:0:\ngotest:x:{UID}:\n"


def hidden_system_paths(goroot: Path, project: Path) -> tuple[Path, ...]:
    """Server code and interpreters that live under a system directory: hidden from both sandboxes.

    /usr/local is hidden whole (pip, pyenv and npm install there, with their configuration and its
    tokens in /usr/local/etc); a toolchain inside it is bound back on its own (`Layout.system_args`).
    """
    local = Path("/usr/local").resolve()
    out: list[Path] = [local] if local.is_dir() and goroot.resolve() != local else []
    candidates = [Path(sys.prefix), Path(sys.base_prefix), project]
    for path in candidates:
        real = path.resolve()
        if not any(real.is_relative_to(Path(s).resolve()) for s in _SYSTEM if Path(s).is_dir()):
            continue  # not in the view at all
        if goroot.resolve().is_relative_to(real) or any(real.is_relative_to(h) for h in out):
            continue
        out.append(real)
    return tuple(out)


def args_file(args: list[str]) -> bytes:
    """NUL-separated, as `bwrap --args FD` reads them."""
    return b"".join(a.encode() + b"\0" for a in args)

"""The sandbox's seccomp filters, compiled to BPF by libseccomp (through pyseccomp, its ctypes binding).

Two filters, loaded by bubblewrap (`--seccomp FD`) just before it runs the sandboxed command:

- `TEST`, for test binaries: no mount, umount2, pivot_root, unshare, setns, ptrace, bpf, keyctl, nor
  the syscalls that reach the same ends another way (the new mount API, key rings, kernel modules,
  other processes' memory, file handles);
- `BUILD`, for the `go` process and its compilers: the same minus the four syscalls the per-binary
  set-up needs to build the test binary's own sandbox (mount, umount2, pivot_root, unshare).

Filters stack: a test binary runs under both. Each denied call fails with EPERM. libseccomp adds
the architecture check (a syscall from another ABI, such as 32-bit `int 0x80`, kills the process).
"""

from __future__ import annotations

import errno
from pathlib import Path

# The four a nested bubblewrap needs; denied to test code only.
_SETUP = ("mount", "umount2", "pivot_root", "unshare")
_ALWAYS = (
    "setns",
    "ptrace",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "open_by_handle_at",
    "perf_event_open",
    "userfaultfd",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "reboot",
)
TEST: tuple[str, ...] = (*_SETUP, *_ALWAYS)
BUILD: tuple[str, ...] = _ALWAYS


class SeccompUnavailable(RuntimeError):
    """libseccomp (or its binding) is missing or refused to build the filter."""


def write_filter(denied: tuple[str, ...], path: Path) -> None:
    """Compile a filter that allows everything except `denied` (EPERM) and write its BPF to `path`.

    Raises:
        SeccompUnavailable: pyseccomp or libseccomp is not installed, or a syscall name is unknown.
    """
    try:
        import pyseccomp  # loads libseccomp.so: only when a sandbox is set up
    except (ImportError, OSError) as exc:
        raise SeccompUnavailable(f"libseccomp not available: {exc}") from exc
    try:
        flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        for name in denied:
            flt.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        partial = path.with_suffix(".partial")
        with partial.open("wb") as fh:
            flt.export_bpf(fh)
        partial.replace(path)
    except (OSError, ValueError, RuntimeError) as exc:
        raise SeccompUnavailable(f"libseccomp could not build the filter: {exc}") from exc

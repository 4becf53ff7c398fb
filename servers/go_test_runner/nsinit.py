"""The first process inside the sandbox, and the `-exec` wrapper of test binaries: set up, then exec.

Run as a script with the standard library only (`python -I -S nsinit.py SPEC -- argv...`), so it
does not depend on the environment it is started in (which is scrubbed). SPEC is JSON, or
`@file` naming a JSON file:

    {"loopback": bool,            bring up `lo` (a new network namespace starts with it down)
     "new_mount_ns": bool,        unshare a private mount namespace first (the -exec wrapper)
     "hide": [dir, ...],          cover each with an empty read-only tmpfs (credential directories)
     "readonly": [dir, ...],      bind each read-only over itself (shared caches, for test binaries)
     "overlay": [[dir, upper, work], ...]   overlay each dir with a private writable layer
     "env": {name: value},        set before exec
     "rlimits": {"RLIMIT_AS": n}} hard and soft limits

Mounts need the private mount namespace of the sandbox (or `new_mount_ns`). Exits 125 when it
cannot set up; never runs the command half-confined.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import socket
import struct
import sys

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH22x"
_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC = 32, 4096, 16384
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def loopback_up() -> None:
    """Set IFF_UP on `lo` (httptest and friends need loopback).

    Raises:
        OSError: the ioctl is refused (no CAP_NET_ADMIN in this namespace).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        got = fcntl.ioctl(sock, _SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0))
        flags = struct.unpack(_IFREQ, got)[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def hide(path: str) -> None:
    """Cover `path` with an empty read-only tmpfs, so nothing under it can be read.

    Raises:
        OSError: the mount is refused.
    """
    flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    _check(_libc.mount(b"none", path.encode(), b"tmpfs", flags, b"size=4k,mode=555"), f"cannot hide {path}")


def readonly(path: str) -> None:
    """Bind `path` over itself read-only: readable, not writable, whatever the file modes say.

    Raises:
        OSError: the mount is refused.
    """
    target = path.encode()
    _check(_libc.mount(target, target, None, _MS_BIND | _MS_REC, None), f"cannot bind {path}")
    flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV
    _check(_libc.mount(None, target, None, flags, None), f"cannot make {path} read-only")


def overlay(path: str, upper: str, work: str) -> None:
    """Mount an overlay on `path`: reads see `path`, writes land in `upper` (and vanish with it).

    Raises:
        OSError: the mount is refused (kernels before 5.11 refuse overlayfs in a user namespace).
    """
    options = f"lowerdir={path},upperdir={upper},workdir={work}".encode()
    _check(_libc.mount(b"overlay", path.encode(), b"overlay", 0, options), f"cannot overlay {path}")


def main(argv: list[str]) -> None:
    """Set up, then replace this process with the command after `--`; never returns."""
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: nsinit.py SPEC -- command...\n")
        sys.exit(125)
    try:
        raw = argv[1]
        if raw.startswith("@"):
            with open(raw[1:], encoding="utf-8") as fh:
                raw = fh.read()
        spec = json.loads(raw)
        if spec.get("new_mount_ns"):
            _check(_libc.unshare(_CLONE_NEWNS), "cannot unshare the mount namespace")
        if spec.get("loopback"):
            loopback_up()
        for path in spec.get("hide", []):
            hide(path)
        for path in spec.get("readonly", []):
            readonly(path)
        for path, upper, work in spec.get("overlay", []):
            overlay(path, upper, work)
        os.environ.update(spec.get("env", {}))
        for name, value in spec.get("rlimits", {}).items():
            resource.setrlimit(getattr(resource, name), (int(value), int(value)))
        os.execv(argv[3], argv[3:])  # noqa: S606 - replacing this process is the point
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        sys.stderr.write(f"sandbox setup failed: {exc}\n")
        sys.exit(125)


if __name__ == "__main__":
    main(sys.argv)

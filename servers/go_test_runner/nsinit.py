"""The first process inside the sandbox: bring up loopback, set rlimits, exec the command.

Run as a script with the standard library only (`python -I nsinit.py SPEC -- argv...`), so it does
not depend on the environment it is started in (which is scrubbed). SPEC is JSON:
`{"loopback": bool, "hide": [dir, ...], "rlimits": {"RLIMIT_AS": bytes, ...}}`: each `hide` directory
is covered by an empty read-only tmpfs (this needs the private mount namespace unshare gives us).
It exits 125 when it cannot set up.
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
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8


def loopback_up() -> None:
    """Set IFF_UP on `lo` (a new network namespace starts with it down; httptest needs it).

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
    libc = ctypes.CDLL(None, use_errno=True)
    flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    if libc.mount(b"none", path.encode(), b"tmpfs", flags, b"size=4k,mode=555") != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot hide {path}: {os.strerror(errno)}")


def main(argv: list[str]) -> None:
    """Set up, then replace this process with the command after `--`; never returns."""
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: nsinit.py SPEC -- command...\n")
        sys.exit(125)
    try:
        spec = json.loads(argv[1])
        if spec.get("loopback"):
            loopback_up()
        for path in spec.get("hide", []):
            hide(path)
        for name, value in spec.get("rlimits", {}).items():
            resource.setrlimit(getattr(resource, name), (int(value), int(value)))
        os.execv(argv[3], argv[3:])  # noqa: S606 - replacing this process is the point
    except (OSError, ValueError, AttributeError) as exc:
        sys.stderr.write(f"sandbox setup failed: {exc}\n")
        sys.exit(125)


if __name__ == "__main__":
    main(sys.argv)

"""One process at a time on a directory: an exclusive `flock` stamped with the holder's pid.

The lock lives as long as the open file (the kernel drops it when the process dies), so a crash
never leaves a stale lock; the pid in the file is only there to name the holder in the error.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class LockHeld(Exception):
    """Another process (or another open handle in this one) holds the lock."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by pid {holder}")
        self.path = path
        self.holder = holder  # the pid the holder wrote, or "unknown"


def take_lock(path: Path) -> IO[str]:
    """Take the exclusive lock on `path` without waiting; the caller releases it by closing the handle.

    Raises:
        LockHeld: someone holds it; `holder` is the pid they wrote.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()[:20] or "unknown"
        handle.close()
        raise LockHeld(path, holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle

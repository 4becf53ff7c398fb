"""Find processes by what they run or what they were started with (for orphan checks)."""

from __future__ import annotations

import os
from pathlib import Path


def matching(needle: str, *, environ: bool = False) -> list[int]:
    """Pids of this user's processes whose command line (or environment) contains `needle`."""
    found: list[int] = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            data = (entry / "cmdline").read_bytes()
            if environ:
                data += (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if needle.encode() in data:
            found.append(int(entry.name))
    return found

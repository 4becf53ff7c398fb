"""Hash-chained audit log of every tool call.

One JSON object per line: time, caller, tool, a digest of the arguments (never the arguments:
they may hold ticket text or patches), outcome, trace id, the previous line's hash and this line's
hash = sha256(previous hash + canonical JSON of the record). Removing, reordering or editing a line
breaks the chain at that point, which `verify_chain` reports. A restarted server continues the
chain from the file's last line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def digest_arguments(arguments: dict[str, Any]) -> str:
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _line_hash(prev: str, record: dict[str, Any]) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode()).hexdigest()


class AuditLog:
    """Appends chained records to `path`; thread-safe within one process (one file per server)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        _private_dir(path.parent)
        self._prev = self._last_hash()

    def _last_hash(self) -> str:
        if not self._path.exists():
            return GENESIS
        last = GENESIS
        with self._path.open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    last = json.loads(raw)["hash"]
        return last

    def append(self, *, caller: str, tool: str, arguments: dict[str, Any], outcome: str, trace_id: str | None) -> str:
        """Append one record and return its hash. Raises OSError when the log cannot be written."""
        with self._lock:
            record: dict[str, Any] = {
                "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
                "caller": caller,
                "tool": tool,
                "args_sha256": digest_arguments(arguments),
                "outcome": outcome,
                "trace_id": trace_id,
                "prev": self._prev,
            }
            line_hash = _line_hash(self._prev, record)
            # a new log is 0600: who called which tool when is the operator's to read, not every local user's
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({**record, "hash": line_hash}, sort_keys=True) + "\n")
                fh.flush()
            self._prev = line_hash
            return line_hash


def _private_dir(path: Path) -> None:
    """Make `path`'s missing parts 0700 (an existing directory keeps its mode: the user may share it on purpose)."""
    missing: list[Path] = []
    at = path
    while not at.is_dir() and at != at.parent:
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile, or a file: then opening the log says so
            folder.mkdir(mode=0o700)


def verify_chain(path: Path) -> tuple[bool, int | None]:
    """Check the whole chain. Returns (ok, first bad line number (1-based) or None)."""
    prev = GENESIS
    with path.open("r", encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                return False, number
            if not isinstance(entry, dict) or "hash" not in entry:  # a line that is no entry breaks the chain
                return False, number
            claimed = entry.pop("hash")
            if entry.get("prev") != prev or _line_hash(prev, entry) != claimed:
                return False, number
            prev = claimed
    return True, None

"""An in-memory overlay over files read through code-search: the agent never holds the repository.

`view` reads a file (through the injected reader, once) and shows numbered lines; `edit` is a
search/replace on the overlay (the search text must occur exactly once, so an edit is unambiguous);
`diff()` is the patch: a git-style unified diff of every changed file against what was read.

The model sees every credential in a file as `[credential removed: KIND]` (the gateway removes them,
`agent.llm.gateway.Redacting`), while the overlay holds the real text. So an edit whose replacement
would write that marker in place of a credential is refused, and a search that fails on a marker is
told why: a fix never loses a key it could not see.
"""

from __future__ import annotations

import difflib
import hashlib
import posixpath
import re
from collections.abc import Awaitable, Callable

from credentials import PRIVATE_KEY_BLOCK, REMOVED

Reader = Callable[[str], Awaitable[str | None]]  # path -> text, None when there is no such file

_FUNC = re.compile(r"^func\s+(?:\([^)]*\)\s*)?([A-Za-z_][A-Za-z0-9_]*)")
_MAX_PATH = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class EditError(Exception):
    """An edit the model can correct: the message says what to do instead."""


def _check_path(path: str) -> str:
    """`path` as the overlay keys it: `./calc.go`, `a//b.go` and `a/./b.go` are `calc.go`, `a/b.go` and `a/b.go`
    (one file under one name, so no two overlay entries make a diff git refuses). A path ending in `/` names a
    directory and is refused."""
    if not path or len(path) > _MAX_PATH or path.startswith("/") or ".." in path.split("/") or "\\" in path:
        raise EditError("path must be relative to the repository root: not absolute, without '..' or '\\'")
    if _CONTROL.search(path):  # a newline would write its own lines into the diff's headers
        raise EditError("path must not contain control characters (newlines, tabs, ...)")
    if path.endswith("/"):
        raise EditError("path names a directory (it ends in '/'): give a file's path, such as calc.go")
    normal = posixpath.normpath(path)
    if normal in (".", "") or normal.startswith("/"):
        raise EditError("path must name a file relative to the repository root, such as calc.go")
    return normal


def _split(text: str) -> list[str]:
    """`text`'s lines as git and Go count them: ended by "\n" only. `str.splitlines` also breaks at \r, \v, \f,
    \x1c-\x1e, \x85, U+2028 and U+2029, which a Go file can hold in a comment or a string: a diff built on its
    lines would not apply, and a view's line numbers would not be the compiler's."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _diff_lines(old: str, new: str) -> list[str]:
    def lines(text: str) -> list[str]:
        out = [line + "\n" for line in _split(text)]
        if out and not text.endswith("\n"):
            out[-1] += "\\ No newline at end of file\n"
        return out

    return list(difflib.unified_diff(lines(old), lines(new), n=3))[2:]  # drop difflib's ---/+++ lines


class Overlay:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self.base: dict[str, str | None] = {}  # path -> text as read (None: did not exist)
        self.current: dict[str, str] = {}

    async def text(self, path: str) -> str | None:
        path = _check_path(path)
        if path not in self.base:
            original = await self._reader(path)
            self.base[path] = original
            if original is not None:
                self.current[path] = original
        return self.current.get(path)

    async def view(self, path: str, start: int = 1, end: int | None = None) -> str:
        path = _check_path(path)
        text = await self.text(path)
        if text is None:
            raise EditError(
                f"no file {path} among those code-search indexes (Go and Markdown): a file of another kind "
                "(go.mod, YAML, a Makefile, generated code) may exist and cannot be read or changed here; a new file: "
                "create it with edit and an empty search"
            )
        lines = _split(text)
        start = _outside_keys(text, start)
        end = min(end or len(lines), len(lines), start + 399)
        body = "\n".join(f"{n:>5}  {lines[n - 1]}" for n in range(max(1, start), end + 1))
        return f"{path} (lines {start}-{end} of {len(lines)})\n{body}"

    async def edit(self, path: str, search: str, replace: str) -> str:
        """Apply one search/replace. Raises EditError when `search` is missing or ambiguous, or when the
        replacement would write a credential's marker (`_check_markers`)."""
        path = _check_path(path)
        text = await self.text(path)
        _check_markers(search, replace)
        if text is None:
            if search:
                raise EditError(f"no file {path}; to create it, send an empty search and the whole file as replace")
            self.current[path] = replace
            return f"created {path} ({len(_split(replace))} lines)"
        if not search:
            raise EditError("search is empty: give the exact existing text to replace")
        count = text.count(search)
        if count == 0 and REMOVED in search:
            raise EditError(
                f"search text not found in {path}: it contains {REMOVED}…], which stands for a credential kept from "
                "you; the file has the real value there, so search for lines that leave it out"
            )
        if count == 0:
            raise EditError(f"search text not found in {path}; view the file and copy the exact lines, tabs included")
        if count > 1:
            raise EditError(f"search text occurs {count} times in {path}; include more surrounding lines")
        self.current[path] = text.replace(search, replace, 1)
        return f"edited {path}"

    def changed(self) -> list[str]:
        return sorted(p for p, t in self.current.items() if t != (self.base.get(p) or ""))

    def diff(self) -> str:
        """The overlay as a git-style unified diff (empty when nothing changed)."""
        parts: list[str] = []
        for path in self.changed():
            old = self.base.get(path)
            hunks = _diff_lines(old or "", self.current[path])
            if old is None:
                parts.append(f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n")
            else:
                parts.append(f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n")
            parts.append("".join(hunks))
        return "".join(parts)

    def state(self) -> str:
        """A short hash of the overlay's content (what the stuck detector compares)."""
        return hashlib.sha256(self.diff().encode()).hexdigest()[:16]

    def functions_touched(self) -> list[str]:
        """Go functions whose bodies the overlay changed (the enclosing `func` of each changed line)."""
        names: list[str] = []
        for path in self.changed():
            new = _split(self.current[path])
            old = _split(self.base.get(path) or "")
            matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
            for tag, _, _, j1, j2 in matcher.get_opcodes():
                if tag == "equal":
                    continue
                for line_no in range(j1, max(j2, j1 + 1)):
                    name = _enclosing_func(new, min(line_no, len(new) - 1))
                    label = f"{path}:{name}" if name else path
                    if label not in names:
                        names.append(label)
        return names


def _outside_keys(text: str, start: int) -> int:
    """`start`, or the BEGIN line of the private key it falls inside: a view that starts within a key still shows
    its BEGIN line, so the gateway removes the key whole (`credentials.PRIVATE_KEY_BLOCK`)."""
    for block in PRIVATE_KEY_BLOCK.finditer(text):
        first = text.count("\n", 0, block.start()) + 1
        last = text.count("\n", 0, block.end()) + 1
        if first < start <= last:
            return first
    return start


def _check_markers(search: str, replace: str) -> None:
    """Refuse a replacement that writes more credential markers than the text it replaces holds."""
    if replace.count(REMOVED) > search.count(REMOVED):
        raise EditError(
            f"replace contains {REMOVED}…], which stands for a credential kept from you; the file keeps the "
            "real value only if your edit leaves that line alone: edit the lines around it instead"
        )


def _enclosing_func(lines: list[str], index: int) -> str | None:
    for i in range(index, -1, -1):
        if i < len(lines) and (m := _FUNC.match(lines[i])):
            return m.group(1)
    return None

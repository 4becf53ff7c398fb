"""What the Go tamper analyzer reports about a tree, and the comparison of base and patched facts.

The analyzer (analyzer/main.go) type-checks every package of the module with its tests and names
objects, not spellings: `os.Exit` reached through an alias, a dot-import or a stored function
value is the same object. A fact present at the base is not the patch's doing, so only what the
patched tree adds is refused; findings are compared as multisets of keys without line numbers.
"""

from __future__ import annotations

import collections
import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from servers.common import diffs
from servers.common.errors import UpstreamFailure
from servers.common.patch_policy import PatchReason, Rule
from servers.common.policy import ProtectedPolicy


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Finding(_Model):
    rule: str
    key: str
    file: str
    line: int
    detail: str


class VarUse(_Model):
    var: str
    file: str
    line: int
    restored: bool = False


class Helper(_Model):
    key: str
    file: str
    line: int
    hash: str


class DeclaredTest(_Model):
    package: str
    dir: str
    name: str
    file: str
    line: int


class Facts(_Model):
    """The analyzer's JSON output (absent lists are empty)."""

    findings: list[Finding] | None = None
    writes: list[VarUse] | None = None
    reads: list[VarUse] | None = None
    helpers: list[Helper] | None = None
    helper_files: list[str] | None = None
    tests: list[DeclaredTest] | None = None
    test_literals: list[str] | None = None
    errors: list[str] | None = None
    packages: int = 0

    @classmethod
    def parse(cls, data: bytes | str) -> Facts:
        """Raises: UpstreamFailure when the analyzer's output is not its JSON document."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise UpstreamFailure(f"tamper analyzer printed something unexpected: {str(exc)[:200]}") from exc

    @classmethod
    def merged(cls, parts: list[Facts]) -> Facts:
        """The facts of several modules of one repository as one tree's (each names files from the root)."""
        if len(parts) == 1:
            return parts[0]
        lists = {
            name: [item for part in parts for item in (getattr(part, name) or [])]
            for name in cls.model_fields
            if name != "packages"
        }
        return cls.model_validate({**lists, "packages": sum(part.packages for part in parts)})


_FINDING_RULES: dict[str, Rule] = {
    "exit_at_init": "exit_at_init",
    "flag_at_init": "flag_at_init",
    "linkname": "linkname",
    "test_main": "new_test_main",
    "testing_testing": "testing_testing",
    "testing_in_code": "testing_in_code",
    "test_mode_probe": "test_mode_probe",
    "exit_in_test": "exit_in_test",
    "rewrites_code": "rewrites_code",
    "framing_byte": "framing_byte",
}


def compare(base: Facts, patched: Facts, changed: frozenset[str]) -> list[PatchReason]:
    """Reasons to refuse: facts the patched tree has and the base does not; `changed` = paths the diff changes."""
    out: list[PatchReason] = []
    before = collections.Counter(f.key for f in base.findings or [])
    for f in patched.findings or []:
        if before[f.key] > 0:
            before[f.key] -= 1
            continue
        rule = _FINDING_RULES.get(f.rule)
        if rule is not None:
            out.append(PatchReason(rule=rule, path=f.file, line=f.line, detail=f.detail[:300]))
    read_by_tests = {r.var for r in base.reads or []}
    old_writes = collections.Counter((w.var, w.file) for w in base.writes or [])
    for w in patched.writes or []:
        if w.restored:
            continue  # a test that swaps a package variable and puts the old value back
        if old_writes[(w.var, w.file)] > 0:
            old_writes[(w.var, w.file)] -= 1
            continue
        if w.var in read_by_tests:
            detail = f"assigns {w.var}, which existing tests read"
            out.append(PatchReason(rule="overwrites_test_state", path=w.file, line=w.line, detail=detail))
    new_helpers = {h.key: h for h in patched.helpers or []}
    for h in base.helpers or []:
        now = new_helpers.get(h.key)
        if now is None or now.hash != h.hash:
            what = "removes" if now is None else "changes"
            detail = f"{what} {h.key}, a non-test function only tests use"
            out.append(PatchReason(rule="changed_test_helper", path=h.file, line=h.line, detail=detail))
    for path in sorted(changed & set(base.helper_files or [])):
        detail = "changes a package only tests import (a test helper)"
        out.append(PatchReason(rule="changed_test_helper", path=path, detail=detail))
    out.extend(_shadowing(base, patched))
    return out


def _shadowing(base: Facts, patched: Facts) -> list[PatchReason]:
    """New tests named like an existing test of the other package in the same directory (x vs x_test)."""
    existing = {(t.dir, t.name): t for t in base.tests or []}
    known = {(t.package, t.name) for t in base.tests or []}
    out: list[PatchReason] = []
    for t in patched.tests or []:
        old = existing.get((t.dir, t.name))
        if (t.package, t.name) not in known and old is not None and old.package != t.package:
            detail = f"{t.package}.{t.name} has the name of the existing test {old.package}.{t.name}"
            out.append(PatchReason(rule="shadows_test", path=t.file, line=t.line, detail=detail))
    return out


def read_by_tests(path: str, facts: Facts) -> str | None:
    """The string in test code that names `path` (relative to a test's directory or by file name), if any."""
    name = posixpath.basename(path)
    dirs = {t.dir for t in facts.tests or []} | {"."}
    for literal in facts.test_literals or []:
        # "/cert.pem" is usually appended to a directory held in a variable: a suffix of the path
        lit = literal.strip().removeprefix("./").lstrip("/")
        if not lit or lit == ".":
            continue
        if lit == name or path.endswith("/" + lit) or path == lit:
            return literal
        for d in dirs:
            joined = posixpath.normpath(posixpath.join(d, lit))
            if path == joined or ("/" in lit and path.startswith(joined.rstrip("/") + "/")):
                return literal
        if any(ch in lit for ch in "*?[") and len(re.sub(r"[*?\[\]]", "", lit)) >= 3 and _glob_matches(lit, name):
            return literal
    return None


def _glob_matches(pattern: str, name: str) -> bool:
    """A test string used as a glob (`filepath.Glob("*.golden")`); text that is no valid glob matches nothing."""
    try:
        return diffs.glob_regex(pattern).fullmatch(name) is not None
    except re.error:
        return False


# Go string literals: interpreted ("...", escapes kept but for \" and \\) and raw (`...`)
_GO_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"|`([^`]*)`')
MAX_TEST_SOURCE_BYTES = 1 << 20


def text_facts(test_sources: Mapping[str, str]) -> Facts:
    """Without the analyzer (`static_analysis` off): every string literal of the repository's `_test.go` files,
    read as text, and their directories, for `read_by_tests`. Coarser than the analyzer's facts and on the
    safe side: a literal in a comment, or in a test that never opens a file, names a file too.

    `test_sources` maps a test file's path (relative to the root) to its text (`read_test_sources`).
    """
    literals: list[str] = []
    tests: list[DeclaredTest] = []
    for path, text in sorted(test_sources.items()):
        directory = posixpath.dirname(path) or "."
        tests.append(DeclaredTest(package="", dir=directory, name="", file=path, line=0))
        for m in _GO_STRING.finditer(text):
            raw = m.group(2)
            literals.append(raw if raw is not None else m.group(1).replace('\\"', '"').replace("\\\\", "\\"))
    return Facts(tests=tests, test_literals=literals)


def read_test_sources(root: Path) -> dict[str, str]:
    """The `_test.go` files of the checkout at `root` (path relative to it -> text), as the go tool finds
    packages: directories named testdata or starting with `.` or `_` are skipped, symbolic links are not
    followed, and a file over 1 MiB is left out."""
    out: dict[str, str] = {}
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "testdata" and not d.startswith((".", "_")))
        for name in files:
            if not name.endswith("_test.go"):
                continue
            path = Path(current) / name
            try:
                if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_TEST_SOURCE_BYTES:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            out[path.relative_to(root).as_posix()] = text
    return out


def non_go_reasons(paths: frozenset[str], policy: ProtectedPolicy, facts: Facts | None) -> list[PatchReason]:
    """Non-Go files: refused when tests read them, or when no `allow_non_go` glob allows them.

    Which files tests read comes from `facts`: the analyzer's, or `text_facts` without it. With neither
    (None: github-pr, which judges git's staged diff without reading the tree's tests) that rule is not
    applied here; go-test-runner's check of the same patch applies it."""
    out: list[PatchReason] = []
    for path in sorted(paths):
        if path.endswith(".go") or posixpath.basename(path) in ("go.mod", "go.sum", "go.work", "go.work.sum"):
            continue
        literal = read_by_tests(path, facts) if facts is not None else None
        if literal is not None:
            detail = f"tests read this file (named by {literal[:60]!r} in test code)"
            out.append(PatchReason(rule="test_fixture", path=path, detail=detail))
        elif diffs.matching_glob(path, policy.allow_non_go, whole=True) is None:  # an allow list: whole paths
            detail = "non-Go file not allowed by any allow_non_go pattern"
            out.append(PatchReason(rule="non_go_file", path=path, detail=detail))
    return out

"""What the router knows about a ticket: text, labels, type, components, and the paths and packages it names.

A ticket comes from jira-read's `get_issue` (`TicketFacts.from_issue`), or from a file
(`load_ticket_file`): JSON with the same fields, or Markdown whose first `# ` heading is the title,
with optional YAML front matter for `key`, `labels`, `type` and `components`.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import yamlfiles
from agent.router.errors import TicketError

MAX_FILE_BYTES = 1 << 20
# a file named by its path (with a known extension), or a Go package path under a conventional root
_FILE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.(?:go|md|mod|sum|ya?ml|json|proto|sh|toml|txt))\b")
_PACKAGE = re.compile(r"(?<![\w/.-])((?:internal|pkg|cmd|api|docs?)/[\w./-]*[\w-])")
# the Go project's convention: "net/http: ..." names the package in the title
_TITLE_PACKAGE = re.compile(r"^([a-z0-9][\w.-]*(?:/[\w.-]+)*):\s")


def named_paths(title: str, body: str) -> tuple[str, ...]:
    """Paths and package paths the ticket names, in order of appearance, without duplicates."""
    found: list[str] = []
    head = _TITLE_PACKAGE.match(title)
    if head and not head.group(1).startswith("http"):
        found.append(head.group(1))
    for text in (title, body):
        for pattern in (_FILE, _PACKAGE):
            for m in pattern.finditer(text):
                path = _repository_path(m.group(1))
                if path is not None and path not in found:
                    found.append(path)
    return tuple(found)


def _repository_path(text: str) -> str | None:
    """`text` as a path inside the repository (`./x` is `x`; `.github/...` keeps its dot), or None for a URL
    or a path that leaves the repository (`../x/y.go`): the policies' globs judge repository paths only."""
    if "://" in text:
        return None
    path = posixpath.normpath(text)
    if path in (".", "..") or path.startswith(("../", "/")):
        return None
    return path


class TicketFacts(BaseModel):
    """The facts routing looks at. Text is untrusted data: it is matched and embedded, never obeyed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = ""
    title: str = ""
    body: str = ""
    labels: tuple[str, ...] = ()
    issue_type: str | None = None
    components: tuple[str, ...] = ()
    paths: tuple[str, ...] = Field(default=(), description="Paths and packages named in the text.")

    @classmethod
    def of(
        cls,
        title: str,
        body: str = "",
        *,
        key: str = "",
        labels: tuple[str, ...] | list[str] = (),
        issue_type: str | None = None,
        components: tuple[str, ...] | list[str] = (),
    ) -> TicketFacts:
        """Facts with the named paths extracted from the text."""
        return cls(
            key=key,
            title=title,
            body=body,
            labels=tuple(labels),
            issue_type=issue_type,
            components=tuple(components),
            paths=named_paths(title, body),
        )

    @classmethod
    def from_issue(cls, issue: Mapping[str, Any]) -> TicketFacts:
        """From jira-read's `get_issue` structured result (summary/description are {trust, text} objects).

        Raises:
            TicketError: the result has no key or no summary.
        """
        key = issue.get("key")
        if not isinstance(key, str) or not key:
            raise TicketError("the issue has no key")
        title = _text(issue.get("summary"))
        if not title:
            raise TicketError(f"issue {key} has no summary")
        return cls.of(
            title,
            _text(issue.get("description")),
            key=key,
            labels=[str(x) for x in issue.get("labels") or []],
            issue_type=str(issue["type"]) if issue.get("type") else None,
            components=[str(x) for x in issue.get("components") or []],
        )

    def text(self) -> str:
        return f"{self.title}\n\n{self.body}".strip()


def _text(value: object) -> str:
    if isinstance(value, Mapping):
        inner = value.get("text")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        return inner if isinstance(inner, str) else ""
    return value if isinstance(value, str) else ""


class _FileTicket(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = ""
    title: str = Field(min_length=1)
    body: str = ""
    labels: list[str] = Field(default_factory=list[str])
    type: str | None = None
    components: list[str] = Field(default_factory=list[str])


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n?", re.S)


def load_ticket_file(path: Path) -> TicketFacts:
    """A ticket from a `.json` or `.md` file (see the module docstring for the shapes).

    Raises:
        TicketError: the file is missing, too large, of another kind, or not a ticket.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TicketError(f"cannot read {path.name}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise TicketError(f"{path.name} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TicketError(f"{path.name} is not UTF-8 text") from None
    if path.suffix == ".json":
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TicketError(f"{path.name}: not valid JSON (line {exc.lineno})") from None
    elif path.suffix in (".md", ".markdown"):
        data = _markdown(path.name, text)
    else:
        raise TicketError(f"{path.name}: a ticket file is .json or .md")
    if not isinstance(data, dict):
        raise TicketError(f"{path.name}: a ticket is an object with at least a title")
    try:
        parsed = _FileTicket.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise TicketError(f"{path.name}: {where}: {first['msg']}") from None
    return TicketFacts.of(
        parsed.title,
        parsed.body,
        key=parsed.key or path.stem,
        labels=parsed.labels,
        issue_type=parsed.type,
        components=parsed.components,
    )


def _markdown(name: str, text: str) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    front = _FRONT_MATTER.match(text)
    if front:
        try:
            loaded: Any = yamlfiles.safe_load(front.group(1)) or {}
        except (yamlfiles.DuplicateKeyError, yamlfiles.NestingTooDeep) as exc:
            raise TicketError(f"{name}: the front matter: {yamlfiles.describe(exc)[1]}") from None
        except yaml.YAMLError:
            raise TicketError(f"{name}: the front matter is not valid YAML") from None
        if not isinstance(loaded, dict):
            raise TicketError(f"{name}: the front matter is not a mapping")
        meta = {str(k): v for k, v in loaded.items()}  # pyright: ignore[reportUnknownVariableType]
        text = text[front.end() :]
    lines = text.splitlines()
    title_at = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if title_at is None:
        raise TicketError(f"{name}: no '# ' title line")
    body = "\n".join(lines[title_at + 1 :]).strip()
    return {**meta, "title": lines[title_at][2:].strip(), "body": body}

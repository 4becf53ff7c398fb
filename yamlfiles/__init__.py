"""The one strict YAML loader: how every operator, policy, settings and ticket file is read, failing closed.

`yaml.safe_load` keeps the *last* of two equal keys, so a second `identities:` block or a second
`allow_go_mod: true` appended to a policy file silently replaces what a reviewer read above it. Here:

- a repeated key in a mapping is refused (`DuplicateKeyError`, naming the line of both);
- nesting deeper than `MAX_DEPTH` is refused (`NestingTooDeep`) before it can exhaust the stack;
- `read_text` / `load_yaml_file` refuse a directory, an unreadable file and bytes that are not UTF-8 text.

Every file refusal is a `YamlFileError` with one line: `<file>: <where>: <reason>`. Both sides use it,
so it depends on nothing of ours: the servers (`servers.common.yamlfile` makes it a `ConfigError`), the
agent (`agent.policy` makes it a `PolicyError`) and the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

# Far deeper than any policy, settings or ticket file needs; far shallower than Python's stack.
MAX_DEPTH = 100
_MERGE = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping holds the same key twice."""


class NestingTooDeep(ComposerError):
    """Collections nested deeper than MAX_DEPTH."""


class _StrictLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise NestingTooDeep(None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # `<<: *base` then an explicit key is an override, not a duplicate
                continue
            key: Any = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable: the base constructor refuses it with its own message
                continue
            if first is not None:
                shown = repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + "..."
                raise DuplicateKeyError(
                    None, None, f"duplicate key {shown} (first at line {first})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, refusing repeated keys and deep nesting.

    Raises:
        yaml.YAMLError: invalid YAML, a repeated key (`DuplicateKeyError`), or nesting too deep
            (`NestingTooDeep`).
    """
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise NestingTooDeep(None, None, "nested too deeply", None) from None


def describe(exc: yaml.YAMLError, *, invalid: str = "invalid YAML") -> tuple[str, str]:
    """(where, reason) of a load error, for a one-line message: ("line 4", "duplicate key 'a' ...").

    `invalid` words a syntax error's reason (followed by the parser's problem in parentheses).
    """
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}" if mark is not None else "(file)"
    problem = getattr(exc, "problem", None)
    if isinstance(exc, DuplicateKeyError | NestingTooDeep):
        return where, str(problem)
    reason = f"{invalid} ({problem})" if problem else invalid
    return where, reason.splitlines()[0]


class YamlFileError(Exception):
    """A YAML file that cannot be used; `where` is "line N" or "(file)", `reason` what is wrong."""

    def __init__(self, path: Path, where: str, reason: str) -> None:
        self.message = f"{path}: {reason}" if where == "(file)" else f"{path}: {where}: {reason}"
        super().__init__(self.message)
        self.path = path
        self.where = where
        self.reason = reason


def read_text(path: Path) -> str:
    """The file's text.

    Raises:
        YamlFileError: a directory, unreadable, or not UTF-8 text.
    """
    if path.is_dir():
        raise YamlFileError(path, "(file)", "is a directory, not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise YamlFileError(path, "(file)", f"cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(path, "(file)", f"not UTF-8 text (byte {exc.start})") from None


def load_text(path: Path, text: str, *, invalid: str = "invalid YAML") -> Any:
    """Parse `text`, read from `path` (an empty text is None); a refusal names `path`.

    Raises:
        YamlFileError: invalid YAML, a repeated key, or nesting too deep.
    """
    try:
        return safe_load(text)
    except yaml.YAMLError as exc:
        raise YamlFileError(path, *describe(exc, invalid=invalid)) from None


def load_yaml_file(path: Path, *, invalid: str = "invalid YAML") -> Any:
    """Read and parse one YAML file (an empty file is None).

    Raises:
        YamlFileError: a directory, unreadable, not UTF-8 text, invalid YAML, a repeated key, or
            nesting too deep; the one-line message names the file (and the line when known).
    """
    return load_text(path, read_text(path), invalid=invalid)


def quoted_number_hint(kind: str, value: object) -> str:
    """For a number a YAML file gives as text (quoted, or an exponent YAML reads as text: `1.0e6`), how to write
    it; `kind` is the validation error's type (pydantic's `int_type`/`float_type`), else nothing to add."""
    if kind not in ("int_type", "float_type") or not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return f" (got the text {value[:40]!r}: write a number without quotes; an exponent needs its sign, 1.0e+6)"

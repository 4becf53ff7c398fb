"""The tests `go test -list` would name in one `_test.go` file, read from its syntax tree (tree-sitter-go).

This is go's own test loader (cmd/go/internal/load/test.go, `testFuncs.load`) and `go/doc.Examples`
restated on tree-sitter's tree, for the census's base listing (listing.py): nothing is compiled.

- A top-level function (no receiver) named `Test`, `Fuzz` (or `Benchmark`) followed by the end of
  the name or a rune that is not a lower-case letter (`Testing` and `Testfoo` are helpers, `Test_x`
  and `TestΣ` are tests) must have go's signature: one parameter `*T` or `*pkg.T` (`*F`, `*B`), no
  results, no type parameters. A wrong signature makes go refuse the whole package:
  `NotListable`. `TestMain` is a test when it takes `*T`, else the package's main (`*M`; two are an error).
- An example (`Example...`, no parameters, no results, a body) is run, and so listed, only when
  the last comment group of its body starts with `Output:` or `Unordered output:` (any case).
  Comment groups follow go/parser: a comment on the line of the token before it starts a group of
  its own, and a blank line ends a group.
- A file tree-sitter cannot parse cleanly is `NotListable` too (go's parser would refuse it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import tree_sitter
import tree_sitter_go

_LANGUAGE = tree_sitter.Language(tree_sitter_go.language())
_OUTPUT = re.compile(r"[\t\n\v\f\r ]*(?:unordered )?output:", re.IGNORECASE)


class NotListable(ValueError):
    """go's test loader would refuse this file (a syntax error or a test with the wrong signature)."""


@dataclass
class FileTests:
    """The tests, fuzz targets and listed examples of one file, in declaration order."""

    tests: list[str] = field(default_factory=list[str])
    fuzz: list[str] = field(default_factory=list[str])
    examples: list[str] = field(default_factory=list[str])
    mains: int = 0  # TestMain(*testing.M) definitions (more than one in a package is go's error)


def is_test(name: str, prefix: str) -> bool:
    """go's `isTest`: `prefix`, then the end of the name or a rune that is not a lower-case letter."""
    if not name.startswith(prefix):
        return False
    rest = name[len(prefix) :]
    return not rest or unicodedata.category(rest[0]) != "Ll"


def read_file(source: bytes) -> FileTests:
    """The listed functions of one test file.

    Raises:
        NotListable: the file does not parse, or a test function has a signature go refuses.
    """
    tree = tree_sitter.Parser(_LANGUAGE).parse(source)
    if tree.root_node.has_error:
        raise NotListable("the file does not parse")
    out = FileTests()
    for decl in tree.root_node.named_children:
        if decl.type != "function_declaration":
            continue  # methods (method_declaration) are never tests
        name = _text(decl.child_by_field_name("name"))
        if name == "TestMain":
            if _is_test_func(decl, "T"):
                out.tests.append(name)
            else:
                _check(decl, name, "M")
                out.mains += 1
        elif is_test(name, "Test"):
            _check(decl, name, "T")
            out.tests.append(name)
        elif is_test(name, "Benchmark"):
            _check(decl, name, "B")
        elif is_test(name, "Fuzz"):
            _check(decl, name, "F")
            out.fuzz.append(name)
        if is_test(name, "Example") and _is_listed_example(decl):
            out.examples.append(name)
    return out


def _text(node: tree_sitter.Node | None) -> str:
    return node.text.decode("utf-8", errors="replace") if node is not None and node.text is not None else ""


def _params(decl: tree_sitter.Node) -> list[tree_sitter.Node]:
    params = decl.child_by_field_name("parameters")
    if params is None:
        return []
    return [c for c in params.named_children if c.type in ("parameter_declaration", "variadic_parameter_declaration")]


def _has_results(decl: tree_sitter.Node) -> bool:
    result = decl.child_by_field_name("result")
    if result is None:
        return False
    return result.type != "parameter_list" or any(c.type.endswith("parameter_declaration") for c in result.children)


def _is_test_func(decl: tree_sitter.Node, arg: str) -> bool:
    """go's `isTestFunc`: one parameter of type `*arg` or `*something.arg`, no results."""
    params = _params(decl)
    if _has_results(decl) or len(params) != 1 or params[0].type != "parameter_declaration":
        return False
    if len(params[0].children_by_field_name("name")) > 1:
        return False
    ptr = params[0].child_by_field_name("type")
    if ptr is None or ptr.type != "pointer_type":
        return False
    target = ptr.named_children[-1] if ptr.named_children else None
    if target is None:
        return False
    if target.type == "type_identifier":
        return _text(target) == arg
    if target.type == "qualified_type":
        return _text(target.child_by_field_name("name")) == arg
    return False


def _check(decl: tree_sitter.Node, name: str, arg: str) -> None:
    type_params = decl.child_by_field_name("type_parameters")
    if not _is_test_func(decl, arg) or (type_params is not None and type_params.named_child_count > 0):
        raise NotListable(f"wrong signature for {name}, must be: func {name}({arg.lower()} *testing.{arg})")


def _is_listed_example(decl: tree_sitter.Node) -> bool:
    """An example go runs: no parameters, no results, a body whose last comment group is an output comment."""
    body = decl.child_by_field_name("body")
    if _params(decl) or _has_results(decl) or body is None:
        return False
    group = _last_comment_group(body)
    return group is not None and _OUTPUT.match(_group_text(group)) is not None


def _tokens(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The leaves (tokens and comments) under `node`, in source order."""
    out: list[tree_sitter.Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.child_count == 0 or n.type == "comment":
            out.append(n)
        else:
            stack.extend(reversed(n.children))
    return out


def _last_comment_group(body: tree_sitter.Node) -> list[str] | None:
    """The texts of the comments of the body's last comment group, grouped as go/parser groups them."""
    tokens = [t for t in _tokens(body) if t.start_byte < t.end_byte]  # no zero-width (missing) tokens
    last = max((i for i, t in enumerate(tokens) if t.type == "comment"), default=None)
    if last is None:
        return None
    first = last
    while first > 0 and tokens[first - 1].type == "comment":
        first -= 1
    run = tokens[first : last + 1]
    groups: list[list[tree_sitter.Node]] = []
    # A comment on the line where the token before it ends starts a group that only comments on its
    # own last line continue (n=0 in go/parser); after it, a comment continues a group when it starts
    # at most one line after the group's end (n=1).
    same_line = first > 0 and tokens[first - 1].end_point.row == run[0].start_point.row
    for comment in run:
        if groups:
            gap = 0 if same_line and len(groups) == 1 else 1
            if comment.start_point.row <= groups[-1][-1].end_point.row + gap:
                groups[-1].append(comment)
                continue
        groups.append([comment])
    return [_text(c).replace("\r", "") for c in groups[-1]]


def _group_text(comments: list[str]) -> str:
    """go/ast's `CommentGroup.Text`: markers and directives removed, blank lines collapsed."""
    lines: list[str] = []
    for c in comments:
        if c.startswith("//"):
            c = c[2:]
            if c.startswith(" "):
                c = c[1:]
            elif c and _is_directive(c):
                continue
        else:
            c = c[2:-2]
        lines.extend(line.rstrip(" \t\n\r") for line in c.split("\n"))
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    if kept and kept[-1]:
        kept.append("")
    return "\n".join(kept)


def _is_directive(c: str) -> bool:
    """go/ast's `isDirective` on a `//` comment without its marker (`//go:noinline`, `//line ...`)."""
    if c.startswith(("line ", "extern ", "export ")):
        return True
    colon = c.find(":")
    if colon <= 0 or colon + 1 >= len(c):
        return False
    return all(("a" <= ch <= "z" or "0" <= ch <= "9") for i, ch in enumerate(c[: colon + 2]) if i != colon)

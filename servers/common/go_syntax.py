"""What the patch policy reads of Go source without a toolchain, from tree-sitter-go's syntax tree.

`read_file` gives a file's package name, imports and top-level functions and var specs, each with the
names its code uses (`Ref`); `fragment_refs` gives the names used by a piece of source that need not
parse, such as one line of a hunk (tree-sitter recovers from the errors). Nothing is resolved: a name is
its spelling, with the identifier before the dot when it is selected from one (`os` in `os.Exit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import tree_sitter
import tree_sitter_go

_LANGUAGE = tree_sitter.Language(tree_sitter_go.language())


@dataclass(frozen=True, slots=True)
class Ref:
    """A name in code: `Exit` alone, or selected after a dot (`os.Exit`, `m.Run()`, `f().Run()`)."""

    name: str
    line: int
    selected: bool
    qualifier: str | None  # the identifier before the dot (`os`, `m`); None when alone or after an expression
    called: bool


@dataclass(frozen=True, slots=True)
class Decl:
    """A top-level function (`names` = its name; methods have none) or var spec, and the names its code uses."""

    label: str  # "init", "func Name", "method Name", "var a,b"
    names: tuple[str, ...]
    refs: tuple[Ref, ...]  # of a function's body, of a var spec's values
    root: bool  # runs at package initialisation: `func init()`, or a var spec with values
    line: int


@dataclass(frozen=True, slots=True)
class GoFile:
    package: str
    imports: dict[str, str]  # local name -> import path (dot and blank imports left out)
    dots: frozenset[str]  # paths imported with `.`
    decls: tuple[Decl, ...]


def read_file(source: str) -> GoFile:
    """The package clause, imports and top-level declarations of Go source; never raises."""
    package, imports, dots, decls = "", dict[str, str](), set[str](), list[Decl]()
    for node in _top_level(_parse(source).root_node):
        if node.type == "package_clause":
            package = _text(node.named_children[0]) if node.named_children else ""
        elif node.type == "import_declaration":
            for spec in _specs(node, "import_spec"):
                path = _text(spec.child_by_field_name("path")).strip('"`')
                name = spec.child_by_field_name("name")
                local = _text(name) if name is not None else path.rsplit("/", 1)[-1]
                if local == ".":
                    dots.add(path)
                elif local != "_" and path:
                    imports[local] = path
        elif node.type in ("function_declaration", "method_declaration"):
            name = _text(node.child_by_field_name("name"))
            refs = _refs(node.child_by_field_name("body"))
            params = node.child_by_field_name("parameters")
            if node.type == "method_declaration":
                decls.append(Decl(f"method {name}", (), refs, False, _line(node)))
            elif name == "init" and params is not None and not params.named_children:
                decls.append(Decl("init", (), refs, True, _line(node)))
            else:
                decls.append(Decl(f"func {name}", (name,), refs, False, _line(node)))
        elif node.type == "var_declaration":
            for spec in _specs(node, "var_spec"):
                names = tuple(_text(n) for n in spec.children_by_field_name("name"))
                value = spec.child_by_field_name("value")
                decls.append(Decl(f"var {','.join(names)}", names, _refs(value), value is not None, _line(spec)))
    return GoFile(package, imports, frozenset(dots), tuple(decls))


def fragment_refs(source: str) -> tuple[Ref, ...]:
    """The names used in a piece of Go source, such as a line out of its file."""
    return _refs(_parse(source + "\n").root_node)


def _parse(source: str) -> tree_sitter.Tree:
    return tree_sitter.Parser(_LANGUAGE).parse(source.encode("utf-8", "replace"))


def _top_level(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """The declarations of a file, including those tree-sitter kept inside a span it could not parse."""
    for child in node.named_children:
        if child.type == "ERROR":
            yield from _top_level(child)
        else:
            yield child


def _specs(decl: tree_sitter.Node, kind: str) -> Iterator[tree_sitter.Node]:
    """The specs of an import or var declaration, alone or in a parenthesised list."""
    for child in decl.named_children:
        if child.type == kind:
            yield child
        elif child.type.endswith("_list"):
            yield from (c for c in child.named_children if c.type == kind)


def _refs(node: tree_sitter.Node | None) -> tuple[Ref, ...]:
    """The identifiers (except `_`) and selections under `node`, in source order."""
    out: list[Ref] = []
    stack = [(node, False)] if node is not None else []
    while stack:
        n, called = stack.pop()
        if n.type == "identifier" and n.text != b"_":
            out.append(Ref(_text(n), _line(n), False, None, called))
        elif n.type in ("selector_expression", "qualified_type"):  # `os.Exit(0)` may be read as a conversion
            left = n.child_by_field_name("operand") or n.child_by_field_name("package")
            right = n.child_by_field_name("field") or n.child_by_field_name("name")
            if left is not None and right is not None:
                qualifier = _text(left) if left.type in ("identifier", "package_identifier") else None
                out.append(Ref(_text(right), _line(right), True, qualifier, called))
        calls = n.type in ("call_expression", "type_conversion_expression")
        stack.extend((c, calls and i == 0) for i, c in reversed(list(enumerate(n.named_children))))
    return tuple(out)


def _text(node: tree_sitter.Node | None) -> str:
    return node.text.decode("utf-8", errors="replace") if node is not None and node.text is not None else ""


def _line(node: tree_sitter.Node) -> int:
    return node.start_point.row + 1

"""What the patch policy reads of Go source without a toolchain, from tree-sitter-go's syntax tree.

`read_file` gives a file's package name, imports (and whether it imports "C", cgo) and top-level
functions, var and const specs, each with the names its code uses (`Ref`), its string and rune literals
with their values (`Lit`) and its calls by spelling (`Call`); `fragment` gives the same of a piece of
source that need not parse, such as one line of a hunk (tree-sitter recovers from the errors). Nothing is
resolved: a name is its spelling, with the identifier before the dot when it is selected from one (`os`
in `os.Exit`).
"""

from __future__ import annotations

import re
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
class Lit:
    """A string or rune literal with its value: escapes decoded (`"\\x16"` is the one character U+0016)."""

    value: str
    line: int
    rune: bool


@dataclass(frozen=True, slots=True)
class Call:
    """A call by how its function is spelled: `flag.CommandLine.Lookup("x")` is ("flag", "CommandLine",
    "Lookup"), `byte(22)` is ("byte",); () when the function is another expression."""

    callee: tuple[str, ...]
    line: int
    args: tuple[str, ...]  # each argument's source text
    first: str | None  # the first argument's value when it is a string literal


@dataclass(frozen=True, slots=True)
class Code:
    """What a piece of code uses: names, literals and calls, in source order."""

    refs: tuple[Ref, ...]
    lits: tuple[Lit, ...]
    calls: tuple[Call, ...]


@dataclass(frozen=True, slots=True)
class Decl:
    """A top-level function (`names` = its name; methods have none), var or const spec, and what its code uses."""

    label: str  # "init", "func Name", "method Name", "var a,b", "const a,b"
    names: tuple[str, ...]
    refs: tuple[Ref, ...]  # of a function's body, of a spec's values
    root: bool  # runs at package initialisation: `func init()`, or a var spec with values
    line: int
    lits: tuple[Lit, ...] = ()
    calls: tuple[Call, ...] = ()


@dataclass(frozen=True, slots=True)
class GoFile:
    package: str
    imports: dict[str, str]  # local name -> import path (dot and blank imports left out)
    dots: frozenset[str]  # paths imported with `.`
    decls: tuple[Decl, ...]
    cgo: bool = False  # imports "C" (under any name): cgo compiles its preamble as C


def read_file(source: str) -> GoFile:
    """The package clause, imports and top-level declarations of Go source; never raises."""
    package, imports, dots, decls = "", dict[str, str](), set[str](), list[Decl]()
    cgo = False
    for node in _top_level(_parse(source).root_node):
        if node.type == "package_clause":
            package = _text(node.named_children[0]) if node.named_children else ""
        elif node.type == "import_declaration":
            for spec in _specs(node, "import_spec"):
                path = _text(spec.child_by_field_name("path")).strip('"`')
                name = spec.child_by_field_name("name")
                local = _text(name) if name is not None else path.rsplit("/", 1)[-1]
                cgo = cgo or path == "C"
                if local == ".":
                    dots.add(path)
                elif local != "_" and path:
                    imports[local] = path
        elif node.type in ("function_declaration", "method_declaration"):
            name = _text(node.child_by_field_name("name"))
            code = _code(node.child_by_field_name("body"))
            params = node.child_by_field_name("parameters")
            if node.type == "method_declaration":
                decls.append(Decl(f"method {name}", (), code.refs, False, _line(node), code.lits, code.calls))
            elif name == "init" and params is not None and not params.named_children:
                decls.append(Decl("init", (), code.refs, True, _line(node), code.lits, code.calls))
            else:
                decls.append(Decl(f"func {name}", (name,), code.refs, False, _line(node), code.lits, code.calls))
        elif node.type in ("var_declaration", "const_declaration"):
            kind = node.type.removesuffix("_declaration")
            for spec in _specs(node, f"{kind}_spec"):
                names = tuple(_text(n) for n in spec.children_by_field_name("name"))
                value = spec.child_by_field_name("value")
                code = _code(value)
                root = kind == "var" and value is not None
                label = f"{kind} {','.join(names)}"
                decls.append(Decl(label, names, code.refs, root, _line(spec), code.lits, code.calls))
    return GoFile(package, imports, frozenset(dots), tuple(decls), cgo)


def fragment_refs(source: str) -> tuple[Ref, ...]:
    """The names used in a piece of Go source, such as a line out of its file."""
    return fragment(source).refs


def fragment(source: str) -> Code:
    """The names, literals and calls of a piece of Go source, such as a line out of its file."""
    return _code(_parse(source + "\n").root_node)


def _parse(source: str) -> tree_sitter.Tree:
    return tree_sitter.Parser(_LANGUAGE).parse(source.encode("utf-8", "replace"))


def _top_level(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """The declarations of a file, including those tree-sitter kept inside a span it could not parse.

    Iterative, as every walk here: a patch decides how deeply its ERROR spans nest."""
    stack = list(reversed(node.named_children))
    while stack:
        child = stack.pop()
        if child.type == "ERROR":
            stack.extend(reversed(child.named_children))
        else:
            yield child


def _specs(decl: tree_sitter.Node, kind: str) -> Iterator[tree_sitter.Node]:
    """The specs of an import or var declaration, alone or in a parenthesised list."""
    for child in decl.named_children:
        if child.type == kind:
            yield child
        elif child.type.endswith("_list"):
            yield from (c for c in child.named_children if c.type == kind)


def _code(node: tree_sitter.Node | None) -> Code:
    """The identifiers (except `_`) and selections, literals and calls under `node`, in source order."""
    refs: list[Ref] = []
    lits: list[Lit] = []
    calls: list[Call] = []
    stack = [(node, False)] if node is not None else []
    while stack:
        n, called = stack.pop()
        if n.type == "identifier" and n.text != b"_":
            refs.append(Ref(_text(n), _line(n), False, None, called))
        elif n.type in ("selector_expression", "qualified_type"):  # `os.Exit(0)` may be read as a conversion
            left = n.child_by_field_name("operand") or n.child_by_field_name("package")
            right = n.child_by_field_name("field") or n.child_by_field_name("name")
            if left is not None and right is not None:
                qualifier = _text(left) if left.type in ("identifier", "package_identifier") else None
                refs.append(Ref(_text(right), _line(right), True, qualifier, called))
        elif (value := _literal(n)) is not None:
            lits.append(Lit(value, _line(n), n.type == "rune_literal"))
        is_call = n.type in ("call_expression", "type_conversion_expression")
        if is_call and n.named_children:
            calls.append(_call(n))
        stack.extend((c, is_call and i == 0) for i, c in reversed(list(enumerate(n.named_children))))
    return Code(tuple(refs), tuple(lits), tuple(calls))


def _call(node: tree_sitter.Node) -> Call:
    function = node.child_by_field_name("function") or node.child_by_field_name("type") or node.named_children[0]
    arguments = node.child_by_field_name("arguments")
    args = [c for c in arguments.named_children if c.type != "comment"] if arguments is not None else []
    if node.type == "type_conversion_expression":
        args = [c for c in node.named_children[1:] if c.type != "comment"]
    first = _literal(args[0]) if args and args[0].type != "rune_literal" else None
    return Call(_spelling(function), _line(node), tuple(_text(a) for a in args), first)


def _spelling(node: tree_sitter.Node) -> tuple[str, ...]:
    """`a.b.c` as ("a", "b", "c"); () for an expression that is not a chain of names.

    A loop, not a recursion: `((((os.Exit))))` nests as deeply as the patch likes."""
    tail: list[str] = []
    while True:
        if node.type in ("identifier", "type_identifier", "field_identifier", "package_identifier"):
            return (_text(node), *reversed(tail))
        if node.type in ("selector_expression", "qualified_type"):
            left = node.child_by_field_name("operand") or node.child_by_field_name("package")
            right = node.child_by_field_name("field") or node.child_by_field_name("name")
            if left is None or right is None:
                return ()
            tail.append(_text(right))
            node = left
        elif node.type == "parenthesized_expression" and node.named_children:
            node = node.named_children[0]
        else:
            return ()


_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.DOTALL)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _literal(node: tree_sitter.Node) -> str | None:
    """The value of a string or rune literal node (escapes decoded; a byte escape as the character of that
    code point), else None."""
    if node.type == "raw_string_literal":
        return _text(node)[1:-1].replace("\r", "")
    if node.type not in ("interpreted_string_literal", "rune_literal"):
        return None
    return _ESCAPE.sub(_unescape, _text(node)[1:-1])


def _unescape(m: re.Match[str]) -> str:
    hex_byte, octal, short, long, char = m.groups()
    if char is not None:
        return _SIMPLE.get(char, char)
    code = int(hex_byte, 16) if hex_byte else int(octal, 8) if octal else int(short or long, 16)
    return chr(code) if code <= 0x10FFFF else "\ufffd"


def _text(node: tree_sitter.Node | None) -> str:
    return node.text.decode("utf-8", errors="replace") if node is not None and node.text is not None else ""


def _line(node: tree_sitter.Node) -> int:
    return node.start_point.row + 1

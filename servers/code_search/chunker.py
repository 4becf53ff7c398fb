"""Go source -> units along the syntax tree (the only module that imports tree_sitter).

One unit per function, method (qualified by its receiver type: pkg.Type.Method), type spec with
its doc comment, const/var block, and package doc. Units are never cut by character count; a unit
larger than `max_tokens` is split between statements (or fields, or specs) and every part repeats
the unit's signature. A file whose tree has errors is handed to `markdown.line_windows` instead and
reported by the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import tree_sitter
import tree_sitter_go

from servers.code_search.model import Chunk, Kind

_LANGUAGE = tree_sitter.Language(tree_sitter_go.language())
_SPLITTABLE = {"block", "statement_list", "field_declaration_list", "interface_type"}
_DECLS = {"const_declaration", "var_declaration", "var_spec_list"}


@dataclass(frozen=True, slots=True)
class GoOptions:
    """How Go files are cut; `include_doc=False` drops doc comments (retrieval benchmarks)."""

    max_tokens: int = 512
    include_doc: bool = True


class GoChunker:
    """Chunks one Go file at a time; holds a reusable parser (not thread-safe)."""

    def __init__(self, options: GoOptions | None = None) -> None:
        self._parser = tree_sitter.Parser(_LANGUAGE)
        self._opts = options or GoOptions()

    def chunk(self, path: str, source: bytes) -> list[Chunk] | None:
        """Units of one file, or None when the file does not parse (caller falls back to line windows)."""
        tree = self._parser.parse(source)
        root = tree.root_node
        if root.has_error:
            return None
        lines = source.decode("utf-8", errors="replace").split("\n")
        pkg = ""
        units: list[Chunk] = []
        children = list(root.named_children)
        for i, node in enumerate(children):
            doc = _doc_before(children, i, lines)
            if node.type == "package_clause":
                pkg = _text(node.named_children[0]) if node.named_children else ""
                if doc:
                    start = node.start_point.row - _doc_lines(doc)
                    units.append(
                        self._unit(path, lines, start, node.end_point.row, pkg, "package", f"package {pkg}", doc)
                    )
            elif node.type == "function_declaration":
                name = _text(node.child_by_field_name("name"))
                units.extend(self._split(path, lines, node, f"{pkg}.{name}", "func", doc, ""))
            elif node.type == "method_declaration":
                recv = _receiver_type(node)
                name = _text(node.child_by_field_name("name"))
                owner = f"{pkg}.{recv}" if recv else pkg
                units.extend(self._split(path, lines, node, f"{owner}.{name}", "method", doc, owner))
            elif node.type == "type_declaration":
                units.extend(self._types(path, lines, node, pkg, doc))
            elif node.type in ("const_declaration", "var_declaration"):
                kind: Kind = "const" if node.type == "const_declaration" else "var"
                names = _spec_names(node)
                symbol = f"{pkg}.{names[0]}" if names else f"{pkg}.{kind}"
                units.extend(self._split(path, lines, node, symbol, kind, doc, ""))
        return units

    def _types(self, path: str, lines: list[str], decl: tree_sitter.Node, pkg: str, doc: str) -> list[Chunk]:
        specs = [c for c in decl.named_children if c.type in ("type_spec", "type_alias")]
        if len(specs) == 1:
            name = _text(specs[0].child_by_field_name("name"))
            return self._split(path, lines, decl, f"{pkg}.{name}", "type", doc, "")
        out: list[Chunk] = []
        named = list(decl.named_children)
        for j, spec in enumerate(named):
            if spec.type not in ("type_spec", "type_alias"):
                continue
            name = _text(spec.child_by_field_name("name"))
            out.extend(self._split(path, lines, spec, f"{pkg}.{name}", "type", _doc_before(named, j, lines), ""))
        return out

    def _split(
        self, path: str, lines: list[str], node: tree_sitter.Node, symbol: str, kind: Kind, doc: str, parent: str
    ) -> list[Chunk]:
        start, end = node.start_point.row, node.end_point.row
        signature = _signature(node, lines)
        doc_start = start - _doc_lines(doc)
        whole = self._unit(path, lines, doc_start, end, symbol, kind, signature, doc, parent)
        if whole.tokens <= self._opts.max_tokens:
            return [whole]
        pieces = _pieces(node)
        if len(pieces) < 2:
            return [whole]
        groups: list[tuple[int, int]] = []
        budget = self._opts.max_tokens - len(signature) // 3
        g_start, g_end, used = pieces[0][0], pieces[0][1], 0
        for p_start, p_end in pieces:
            cost = sum(len(line) for line in lines[p_start : p_end + 1]) // 3
            if used and used + cost > budget:
                groups.append((g_start, g_end))
                g_start, used = p_start, 0
            g_end, used = p_end, used + cost
        groups.append((g_start, g_end))
        if len(groups) < 2:
            return [whole]
        opener = f"{signature} {{" if kind in ("func", "method") else signature
        parts: list[Chunk] = []
        for n, (g_start, g_end) in enumerate(groups, start=1):
            first = doc_start if n == 1 else g_start
            last = end if n == len(groups) else g_end
            body = "\n".join(lines[g_start : last + 1])
            head = f"{doc}\n" if n == 1 and doc and self._opts.include_doc else ""
            content = f"{head}{opener}  // part {n}/{len(groups)}\n{body}"
            parts.append(Chunk(path, first + 1, last + 1, symbol, kind, signature, doc, content, parent, n))
        return parts

    def _unit(
        self,
        path: str,
        lines: list[str],
        start: int,
        end: int,
        symbol: str,
        kind: Kind,
        signature: str,
        doc: str,
        parent: str = "",
    ) -> Chunk:
        code_start = start + _doc_lines(doc)
        body_from = start if self._opts.include_doc else code_start
        content = "\n".join(lines[body_from : end + 1])
        return Chunk(path, start + 1, end + 1, symbol, kind, signature, doc, content, parent)


def _doc_lines(doc: str) -> int:
    return doc.count("\n") + 1 if doc else 0


def _text(node: tree_sitter.Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def _doc_before(siblings: list[tree_sitter.Node], i: int, lines: list[str]) -> str:
    """The contiguous `//` comment block that ends on the line right above siblings[i]."""
    row = siblings[i].start_point.row
    j = i - 1
    first = row
    while j >= 0 and siblings[j].type == "comment" and siblings[j].end_point.row == first - 1:
        first = siblings[j].start_point.row
        j -= 1
    if first == row:
        return ""
    return "\n".join(lines[first:row])


def _spec_names(decl: tree_sitter.Node) -> list[str]:
    specs = [c for c in decl.named_children if c.type in ("const_spec", "var_spec")]
    for wrapper in (c for c in decl.named_children if c.type == "var_spec_list"):
        specs.extend(c for c in wrapper.named_children if c.type == "var_spec")
    return [_text(n) for spec in specs for n in spec.children_by_field_name("name")]


def _receiver_type(method: tree_sitter.Node) -> str:
    receiver = method.child_by_field_name("receiver")
    if receiver is None:
        return ""
    for param in receiver.named_children:
        typ = param.child_by_field_name("type")
        while typ is not None and typ.type in ("pointer_type", "generic_type", "parenthesized_type"):
            inner = typ.child_by_field_name("type")
            typ = inner if inner is not None else (typ.named_children[0] if typ.named_children else None)
        if typ is not None:
            return _text(typ)
    return ""


def _signature(node: tree_sitter.Node, lines: list[str]) -> str:
    """Source from the start of the declaration to its body, on one line (first line for others)."""
    body = node.child_by_field_name("body")
    if node.type in ("function_declaration", "method_declaration") and body is not None:
        text = _text(node)[: body.start_byte - node.start_byte]
        return " ".join(text.split())
    return lines[node.start_point.row].strip()


def _pieces(node: tree_sitter.Node) -> list[tuple[int, int]]:
    """Line ranges (0-based, inclusive) of the statements/fields/specs a unit may be split between.

    Looks only a few levels down (body, type spec, spec list): deeper structure is never a split point.
    """
    queue: deque[tuple[tree_sitter.Node, int]] = deque([(node, 0)])
    while queue:
        current, depth = queue.popleft()
        if current.type in _SPLITTABLE or current.type in _DECLS:
            items = [c for c in current.named_children if c.type != "comment"]
            if current.type == "block" and len(items) == 1 and items[0].type == "statement_list":
                items = [c for c in items[0].named_children if c.type != "comment"]
            if len(items) >= 2:
                return [(c.start_point.row, c.end_point.row) for c in items]
        if depth < 3:
            queue.extend((c, depth + 1) for c in current.named_children)
    return []

"""Go source -> units along the syntax tree (the only module that imports tree_sitter).

One unit per function, method (qualified by its receiver type: pkg.Type.Method), type spec with
its doc comment, const/var block, and package doc. A unit larger than `max_tokens` is split between
statements (or fields, or specs) and every part repeats the unit's signature. Only a unit with one
line far over the budget (OVERSIZE times `max_tokens`, in tokens or in windows of characters: a
generated literal, an embedded asset), or one that is still over UNIT_WINDOWS windows of characters in
all (a table of many short lines in one declaration, a long Markdown section), is cut by character
count, into windows of at most `max_tokens` tokens (`cut_oversized`). A file whose tree has errors is
handed to `markdown.line_windows` instead and reported by the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import tree_sitter
import tree_sitter_go

from servers.code_search.model import Chunk, Kind, count_tokens, token_windows

_LANGUAGE = tree_sitter.Language(tree_sitter_go.language())
_SPLITTABLE = {"block", "statement_list", "field_declaration_list", "interface_type"}
_DECLS = {"const_declaration", "var_declaration", "var_spec_list"}
_CASES = {"expression_case", "default_case", "type_case", "communication_case"}
# A unit with a line over OVERSIZE times the token budget, or OVERSIZE windows of characters, is cut into windows.
OVERSIZE = 8
CHARS_PER_TOKEN = 8  # a window holds at most max_tokens * CHARS_PER_TOKEN characters
WINDOW_LABEL_CHARS = 500  # a window keeps this much of its unit's signature and doc
# The first windows of such a unit are indexed, the rest not: a generated table or an embedded asset (go-bindata) of
# 1 MB would be ~1,700 windows, each embedded and searched, for text nobody searches; read_file still reads it all.
MAX_WINDOWS = 16
# A Markdown section is prose someone wrote to be read: its first 64 windows are indexed (about 250 KB of text).
MAX_DOC_WINDOWS = 64
# A unit whose whole text is over this many windows of characters (64 KB at 512 tokens) is cut as well: splitting
# between statements could not, and the index would hold (and each search read) it whole. A large hand-written
# function is split between its statements long before; one that cannot be stays whole below this size.
UNIT_WINDOWS = 2 * OVERSIZE


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

    @property
    def max_tokens(self) -> int:
        return self._opts.max_tokens

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
                    unit = self._unit(path, lines, start, node.end_point.row, pkg, "package", f"package {pkg}", doc)
                    units.extend(cut_oversized([unit], self._opts.max_tokens))
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
        return cut_oversized(self._parts(path, lines, node, symbol, kind, doc, parent), self._opts.max_tokens)

    def _parts(
        self, path: str, lines: list[str], node: tree_sitter.Node, symbol: str, kind: Kind, doc: str, parent: str
    ) -> list[Chunk]:
        start, end = node.start_point.row, node.end_point.row
        signature = _signature(node, lines)
        doc_start = start - _doc_lines(doc)
        whole = self._unit(path, lines, doc_start, end, symbol, kind, signature, doc, parent)
        if whole.tokens <= self._opts.max_tokens:
            return [whole]
        budget = self._opts.max_tokens - count_tokens(signature) - (count_tokens(doc) if self._opts.include_doc else 0)
        pieces = _ranges(_pieces(node), budget, lines)
        if len(pieces) < 2:
            return [whole]
        groups: list[tuple[int, int]] = []
        g_start, g_end, used = pieces[0][0], pieces[0][1], 0
        for p_start, p_end in pieces:
            cost = count_tokens("\n".join(lines[p_start : p_end + 1]))
            if used and used + cost > budget and p_start > g_end:  # never split inside a line
                groups.append((g_start, g_end))
                g_start, used = g_end + 1, 0  # comments and blank lines between pieces go with the next part
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


def cut_oversized(units: list[Chunk], max_tokens: int) -> list[Chunk]:
    """The units of one declaration (whole, or its parts), each with a line far over the budget cut into windows.

    Unchanged unless a unit has a line of over OVERSIZE * max_tokens tokens or OVERSIZE * max_tokens *
    CHARS_PER_TOKEN characters (a generated literal, an embedded asset, minified text), or holds over
    UNIT_WINDOWS * max_tokens * CHARS_PER_TOKEN characters in all: splitting between statements cannot cut
    that. Each such unit becomes windows of at most max_tokens tokens and max_tokens * CHARS_PER_TOKEN
    characters (cut after a newline where one is near), its first MAX_WINDOWS only (a Markdown section's first
    MAX_DOC_WINDOWS), and the declaration's units are numbered as parts 1..n. A window's lines are those its
    characters lie on. Other units, however many tokens they hold, are left as they were.
    """
    if not any(_oversized(u, max_tokens) for u in units):
        return units
    out: list[Chunk] = []
    for unit in units:
        if not _oversized(unit, max_tokens):
            out.append(unit)
            continue
        line = unit.end_line - unit.content.count("\n")  # the content's last line is the unit's last line
        limit = MAX_DOC_WINDOWS if unit.kind == "doc" else MAX_WINDOWS
        for start, end in token_windows(unit.content, max_tokens, max_tokens * CHARS_PER_TOKEN, limit):
            piece = unit.content[start:end]
            first = line
            line += piece.count("\n")
            last = line - 1 if piece.endswith("\n") else line
            first, last = max(first, unit.start_line), max(last, unit.start_line)
            out.append(
                replace(
                    unit,
                    start_line=first,
                    end_line=max(first, last),
                    content=piece,
                    signature=unit.signature[:WINDOW_LABEL_CHARS],  # a var's signature is its (huge) first line
                    doc=unit.doc[:WINDOW_LABEL_CHARS],
                )
            )
    return [replace(unit, part=n) for n, unit in enumerate(out, start=1)]


def _oversized(unit: Chunk, max_tokens: int) -> bool:
    """Whether one line of the unit is far over the budget (OVERSIZE times: in tokens, or in characters), or the
    whole unit over UNIT_WINDOWS windows of characters."""
    limit = OVERSIZE * max_tokens
    if len(unit.content) <= limit:  # a token is at least one character: most units need no count
        return False
    if len(unit.content) > UNIT_WINDOWS * max_tokens * CHARS_PER_TOKEN:
        return True
    return any(
        len(line) > limit * CHARS_PER_TOKEN or (len(line) > limit and count_tokens(line) > limit)
        for line in unit.content.split("\n")
    )


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


def _items(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The statements of a block (through its statement_list), without comments."""
    items = [c for c in node.named_children if c.type != "comment"]
    if len(items) == 1 and items[0].type == "statement_list":
        items = [c for c in items[0].named_children if c.type != "comment"]
    return items


def _pieces(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The statements/fields/specs a unit may be split between: the first level, a few levels down, that has two."""
    queue: deque[tuple[tree_sitter.Node, int]] = deque([(node, 0)])
    while queue:
        current, depth = queue.popleft()
        if current.type in _SPLITTABLE or current.type in _DECLS:
            items = (
                _items(current)
                if current.type == "block"
                else [c for c in current.named_children if c.type != "comment"]
            )
            if len(items) >= 2:
                return items
        if depth < 3:
            queue.extend((c, depth + 1) for c in current.named_children)
    return []


def _inner(node: tree_sitter.Node, depth: int = 0) -> list[tree_sitter.Node]:
    """What an oversize statement splits into: its cases (switch/select), the statements of its block or case,
    or the elements of a composite literal (test tables) — looking through its largest child if need be."""
    children = [c for c in node.named_children if c.type != "comment"]
    cases = [c for c in children if c.type in _CASES]
    if len(cases) >= 2:
        return cases
    if node.type == "literal_value" and len(children) >= 2:
        return children
    for child in children:
        if child.type in ("block", "statement_list"):
            items = _items(child) if child.type == "block" else [c for c in child.named_children if c.type != "comment"]
            if len(items) >= 2:
                return items
    if not children or depth >= 6:
        return []
    return _inner(max(children, key=lambda c: c.end_byte - c.start_byte), depth + 1)


def _last_row(node: tree_sitter.Node) -> int:
    """The last line a node really occupies (a case clause "ends" at column 0 of the next case's line)."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def _ranges(nodes: list[tree_sitter.Node], budget: int, lines: list[str], depth: int = 0) -> list[tuple[int, int]]:
    """Line ranges (0-based, inclusive) of `nodes`; one larger than `budget` is replaced by its inner pieces, the
    first widened to its header line and the last to its closing line, so ranges stay in order and complete."""
    out: list[tuple[int, int]] = []
    for node in nodes:
        start, end = node.start_point.row, _last_row(node)
        inner = _inner(node) if depth < 4 and count_tokens("\n".join(lines[start : end + 1])) > budget else []
        if len(inner) >= 2:
            sub = _ranges(inner, budget, lines, depth + 1)
            sub[0] = (start, sub[0][1])
            sub[-1] = (sub[-1][0], end)
            out.extend(sub)
        else:
            out.append((start, end))
    return out

"""The records code-search stores and returns, and the small pure helpers they need.

A `Chunk` is one retrievable unit (a function, a method, a type with its doc, a const/var block,
a package doc, a Markdown section, or a line window of a file that did not parse). Everything
here is plain data: no tree-sitter, no LanceDB.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["func", "method", "type", "const", "var", "package", "doc", "window"]
KINDS: tuple[Kind, ...] = ("func", "method", "type", "const", "var", "package", "doc", "window")

# Roughly one BPE/WordPiece token per identifier run or punctuation mark: close enough for budgets
# and for deciding when a unit must be split, and independent of any tokenizer package.
_TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[^\sA-Za-z0-9_]")
_IDENT_PART_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b)|[A-Z]?[a-z]+|[A-Z]+|\d+")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")


def count_tokens(text: str) -> int:
    """Estimate the LLM token cost of `text` (identifiers, numbers and punctuation count one each)."""
    return len(_TOKEN_RE.findall(text))


def token_windows(text: str, max_tokens: int, max_chars: int, limit: int | None = None) -> list[tuple[int, int]]:
    """Consecutive [start, end) spans covering `text`, each of at most `max_chars` characters and `max_tokens`
    tokens (as count_tokens counts them), ended after a newline when one falls in a window's second half; with
    `limit`, only the first `limit` spans (the rest of the text is not covered)."""
    spans: list[tuple[int, int]] = []
    start, size = 0, len(text)
    while start < size and (limit is None or len(spans) < limit):
        end = min(size, start + max_chars)
        for n, match in enumerate(_TOKEN_RE.finditer(text, start, end), start=1):
            if n == max_tokens:
                end = match.end()
                break
        if end < size:
            newline = text.rfind("\n", start + (end - start) // 2, end)
            end = newline + 1 if newline >= 0 else end
        spans.append((start, end))
        start = end
    return spans


def split_identifier(word: str) -> list[str]:
    """Split a Go identifier into lower-case parts: parseHTTPHeader -> parse, http, header."""
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(p.lower() for p in _IDENT_PART_RE.findall(piece))
    return parts


def code_text(text: str) -> str:
    """The code-aware full-text form of `text`: each identifier followed by its parts.

    Keeps the whole identifier (exact matches still hit) and adds its parts when it has more than
    one, so `parseHTTPHeader` is found by "parse http header".
    """
    out: list[str] = []
    for word in _WORD_RE.findall(text):
        lower = word.lower()
        out.append(lower)
        parts = split_identifier(word)
        if len(parts) > 1:
            out.extend(parts)
    return " ".join(out)


def content_hash(text: str) -> str:
    """A stable hash of what gets embedded; the embedding cache key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One unit of code or documentation, as stored in the index."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: Kind
    signature: str
    doc: str
    content: str
    parent: str = ""  # for a method: the qualified symbol of its receiver type (pkg.Type)
    part: int = 0  # 0 = whole unit; 1..n = part of a unit split at statement boundaries

    @property
    def name(self) -> str:
        """The last component of the symbol (what a ticket usually names)."""
        return self.symbol.rsplit(".", 1)[-1]

    @property
    def tokens(self) -> int:
        return count_tokens(self.content)

    def embed_text(self) -> str:
        """What the embedder sees: where the unit lives, what it is, then its text."""
        return f"{self.symbol} {self.kind} {self.path}\n{self.content}"

    @property
    def content_hash(self) -> str:
        return content_hash(self.embed_text())


@dataclass(slots=True)
class ChunkStats:
    """Counts for the final index report."""

    files: int = 0
    bytes: int = 0
    chunks: int = 0
    unparsed: list[str] = field(default_factory=list)  # files indexed by line windows
    skipped: int = 0


@dataclass(slots=True)
class Hit:
    """One unit returned by the index, with the score of whichever ranking produced it."""

    repo: str
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    signature: str
    content: str
    tokens: int
    parent: str = ""
    part: int = 0
    score: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.repo}\0{self.path}\0{self.start_line}\0{self.part}"

"""The JQL subset the local backend understands: a parser to a predicate plus an ordering.

Grammar (keywords and field names are case-insensitive)::

    query    := [or_expr] [ORDER BY order (',' order)*]
    or_expr  := and_expr (OR and_expr)*
    and_expr := not_expr (AND not_expr)*
    not_expr := NOT not_expr | '(' or_expr ')' | clause
    clause   := field ('=' | '!=') value | field [NOT] IN '(' value (',' value)* ')'
              | textfield ('~' | '!~') value | field IS [NOT] (EMPTY | NULL)
    order    := (created | updated | key) [ASC | DESC]

Anything outside this subset raises `InvalidInput` naming the offending token: a query the local
backend cannot honour exactly is refused, never silently broadened.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from servers.common.errors import InvalidInput

# A ticket as the evaluator sees it: field name -> list of casefolded values (plain text for text fields).
Doc = Mapping[str, list[str]]
Predicate = Callable[[Doc], bool]

EQ_FIELDS = {
    "project": "project",
    "status": "status",
    "labels": "labels",
    "label": "labels",
    "key": "key",
    "issuekey": "key",
    "issuetype": "issuetype",
    "type": "issuetype",
    "component": "components",
    "components": "components",
    "priority": "priority",
    "assignee": "assignee",
    "reporter": "reporter",
}
TEXT_FIELDS = {"text": "text", "summary": "summary", "description": "description", "comment": "comment"}
ORDER_FIELDS = {"created", "updated", "key"}
KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|!~|=|~|\(|\)|,|>=|<=|>|<)
      | (?P<word>[A-Za-z0-9_.\-*@]+)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # "str" | "op" | "word"
    text: str

    def is_kw(self, word: str) -> bool:
        return self.kind == "word" and self.text.lower() == word


@dataclass(frozen=True)
class Query:
    predicate: Predicate
    order: list[tuple[str, bool]]  # (field, descending)


def tokenize(jql: str) -> list[Tok]:
    """Split JQL into tokens.

    Raises:
        InvalidInput: an unterminated string or a character JQL does not use.
    """
    toks: list[Tok] = []
    pos = 0
    while pos < len(jql):
        if jql[pos:].strip() == "":
            break
        m = _TOKEN.match(jql, pos)
        if m is None or m.group("bad") is not None:
            ch = jql[pos:].lstrip()[:1]
            raise InvalidInput(f"Unsupported character {ch!r} in JQL (unterminated string?).")
        pos = m.end()
        if (s := m.group("str")) is not None:
            toks.append(Tok("str", re.sub(r"\\(.)", r"\1", s[1:-1])))
        elif (op := m.group("op")) is not None:
            toks.append(Tok("op", op))
        else:
            toks.append(Tok("word", m.group("word")))
    return toks


class _Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self, what: str) -> Tok:
        tok = self.peek()
        if tok is None:
            raise InvalidInput(f"JQL ends early: expected {what}.")
        self.i += 1
        return tok

    def expect_op(self, op: str) -> None:
        tok = self.next(f"'{op}'")
        if tok.is_kw("order"):
            raise InvalidInput("ORDER BY is only allowed once, at the very end of the JQL.")
        if tok.kind != "op" or tok.text != op:
            raise InvalidInput(f"Expected '{op}' in JQL, found {tok.text!r}.")

    def parse(self) -> Query:
        pred: Predicate = _always
        tok = self.peek()
        if tok is not None and not tok.is_kw("order"):
            pred = self.or_expr()
        order = self.order_by()
        if (extra := self.peek()) is not None:
            raise InvalidInput(f"Unexpected {extra.text!r} in JQL.")
        return Query(pred, order)

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.is_kw("or"):
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda d: any(p(d) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while (tok := self.peek()) is not None and tok.is_kw("and"):
            self.i += 1
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda d: all(p(d) for p in parts))

    def not_expr(self) -> Predicate:
        tok = self.next("a clause")
        if tok.is_kw("not"):
            inner = self.not_expr()
            return lambda d: not inner(d)
        if tok.kind == "op" and tok.text == "(":
            inner = self.or_expr()
            self.expect_op(")")
            return inner
        if tok.is_kw("order"):
            raise InvalidInput("ORDER BY is only allowed once, at the very end of the JQL.")
        if tok.kind != "word" or tok.text.lower() in KEYWORDS:
            raise InvalidInput(f"Expected a field name in JQL, found {tok.text!r}.")
        return self.clause(tok.text.lower())

    def clause(self, field: str) -> Predicate:
        if field not in EQ_FIELDS and field not in TEXT_FIELDS:
            raise InvalidInput(f"Field {field!r} is not supported by the local Jira backend.")
        tok = self.next("an operator")
        if tok.is_kw("is"):
            negate = (n := self.peek()) is not None and n.is_kw("not")
            self.i += negate
            if not any(self.next("EMPTY").is_kw(w) for w in ("empty", "null")):
                raise InvalidInput("Only 'IS [NOT] EMPTY' is supported after IS.")
            name = EQ_FIELDS.get(field) or TEXT_FIELDS[field]
            return lambda d: (not d.get(name)) != negate
        if field in TEXT_FIELDS and tok.kind == "op" and tok.text in ("~", "!~"):
            terms = _words(self.value())
            name = TEXT_FIELDS[field]
            negate = tok.text == "!~"

            def contains(d: Doc) -> bool:
                return all(any(t in v for v in d.get(name, [])) for t in terms) != negate

            return contains
        if field not in EQ_FIELDS:
            raise InvalidInput(f"Field {field!r} only supports '~' and '!~' in the local Jira backend.")
        name = EQ_FIELDS[field]
        if tok.kind == "op" and tok.text in ("=", "!="):
            wanted = {self.value()}
            negate = tok.text == "!="
        elif tok.is_kw("in") or (tok.is_kw("not") and self.next("IN").is_kw("in")):
            negate = tok.is_kw("not")
            wanted = self.value_list()
        else:
            raise InvalidInput(f"Operator {tok.text!r} is not supported for {field!r} by the local Jira backend.")
        return lambda d: any(v in wanted for v in d.get(name, [])) != negate

    def value(self) -> str:
        tok = self.next("a value")
        if tok.kind == "op" or (tok.kind == "word" and tok.text.lower() in KEYWORDS):
            raise InvalidInput(f"Expected a value in JQL, found {tok.text!r}.")
        if tok.kind == "word" and (n := self.peek()) is not None and n.kind == "op" and n.text == "(":
            raise InvalidInput(f"JQL functions such as {tok.text}() are not supported by the local Jira backend.")
        return tok.text.casefold()

    def value_list(self) -> set[str]:
        self.expect_op("(")
        values = {self.value()}
        while (tok := self.next("',' or ')'")).kind == "op" and tok.text == ",":
            values.add(self.value())
        if tok.text != ")":
            raise InvalidInput(f"Expected ',' or ')' in a value list, found {tok.text!r}.")
        return values

    def order_by(self) -> list[tuple[str, bool]]:
        tok = self.peek()
        if tok is None:
            return []
        if not tok.is_kw("order"):
            raise InvalidInput(f"Unexpected {tok.text!r} in JQL.")
        self.i += 1
        if not self.next("BY").is_kw("by"):
            raise InvalidInput("Expected BY after ORDER in JQL.")
        order: list[tuple[str, bool]] = []
        while True:
            field = self.next("an ORDER BY field").text.lower()
            if field not in ORDER_FIELDS:
                raise InvalidInput(f"ORDER BY {field!r} is not supported; use created, updated or key.")
            desc = False
            if (d := self.peek()) is not None and (d.is_kw("asc") or d.is_kw("desc")):
                desc = d.is_kw("desc")
                self.i += 1
            order.append((field, desc))
            if (c := self.peek()) is None or c.text != ",":
                return order
            self.i += 1


def _always(_doc: Doc) -> bool:
    return True


def _words(text: str) -> list[str]:
    terms = [w.rstrip("*") for w in re.findall(r"[\w*]+", text.casefold())]
    if not any(terms):
        raise InvalidInput("A '~' search needs at least one word.")
    return [t for t in terms if t]


def parse(jql: str) -> Query:
    """Parse JQL in the supported subset into a predicate and an ordering.

    Raises:
        InvalidInput: the JQL is malformed or uses something outside the subset (named in the message).
    """
    return _Parser(tokenize(jql)).parse()


def adf_text(node: Any) -> str:
    """All the text in an ADF node (or a wiki-markup string), space-separated, for `~` matching."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        parts = [str(node.get("text", ""))] if node.get("type") == "text" else []  # type: ignore[union-attr]
        parts += [adf_text(c) for c in node.get("content", [])]  # type: ignore[union-attr]
        return " ".join(p for p in parts if p)
    return ""

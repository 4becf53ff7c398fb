"""The rules of routing.yaml, compiled once: `RuleSet.first_match(ticket)` is the whole rule engine.

Matching is plain string work (casefolded sets, pre-compiled regular expressions, and the policies' one
gitignore-like glob syntax, `pathglob`), well under a millisecond per ticket; bench/routing.py measures it.
`paths_any` matches a named path or anything under it (like protected.yaml's `paths`); `paths_all` asks
that every named path is one of the globs', whole (like `allow_non_go`): `docs/*` takes `docs/intro.md`,
not `docs/gen/main.go`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pathglob
from agent.router.policy import Condition, RoutingPolicy, Rule
from agent.router.ticket import TicketFacts


@dataclass(frozen=True)
class _Compiled:
    labels: frozenset[str]
    issue_types: frozenset[str]
    components: frozenset[str]
    paths_any: tuple[str, ...]
    paths_all: tuple[str, ...]
    title: re.Pattern[str] | None
    body: re.Pattern[str] | None
    text: re.Pattern[str] | None

    @classmethod
    def of(cls, c: Condition) -> _Compiled:
        def rx(pattern: str | None) -> re.Pattern[str] | None:
            return re.compile(pattern) if pattern is not None else None

        return cls(
            frozenset(x.casefold() for x in c.labels),
            frozenset(x.casefold() for x in c.issue_types),
            frozenset(x.casefold() for x in c.components),
            c.paths_any,
            c.paths_all,
            rx(c.title),
            rx(c.body),
            rx(c.text),
        )

    def holds(self, t: TicketFacts) -> bool:
        if self.labels and not any(label.casefold() in self.labels for label in t.labels):
            return False
        if self.issue_types and (t.issue_type is None or t.issue_type.casefold() not in self.issue_types):
            return False
        if self.components and not any(c.casefold() in self.components for c in t.components):
            return False
        if self.paths_any and not any(pathglob.matches(p, self.paths_any) for p in t.paths):
            return False
        if self.paths_all and not (t.paths and all(pathglob.matches(p, self.paths_all, whole=True) for p in t.paths)):
            return False
        if self.title is not None and not self.title.search(t.title):
            return False
        if self.body is not None and not self.body.search(t.body):
            return False
        return self.text is None or bool(self.text.search(t.title) or self.text.search(t.body))


class RuleSet:
    """The policy's rules in order; the first whose `when` holds (and whose `unless` does not) decides."""

    def __init__(self, policy: RoutingPolicy) -> None:
        self._rules = [
            (rule, _Compiled.of(rule.when), _Compiled.of(rule.unless) if rule.unless else None) for rule in policy.rules
        ]

    def __len__(self) -> int:
        return len(self._rules)

    def first_match(self, ticket: TicketFacts) -> Rule | None:
        for rule, when, unless in self._rules:
            if when.holds(ticket) and not (unless is not None and unless.holds(ticket)):
                return rule
        return None

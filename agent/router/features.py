"""Cheap features of a ticket, computed with a few regular expressions (microseconds).

They complement the nearest-neighbour votes: a stack trace, words about concurrency, security,
performance or documentation, how many files the ticket names, and how long it is.
"""

from __future__ import annotations

import math
import re

from agent.router.ticket import TicketFacts

_STACK = re.compile(r"goroutine \d+ \[|^\s*panic: |\.go:\d+(?: \+0x[0-9a-f]+)?|WARNING: DATA RACE|fatal error: ", re.M)
_WORDS = {
    "concurrency": re.compile(
        r"\b(?:data ?races?|racy|race (?:condition|detector)|-race|deadlock\w*|goroutines?|go-?routines?|mutex\w*|"
        r"channels?|concurren\w*|waitgroup|atomic\w*|hangs?|hung|flak\w*|leak\w*)\b",
        re.I,
    ),
    "security": re.compile(
        r"\b(?:cve-\d+-\d+|ghsa-[\w-]+|vulnerab\w*|security|xss|injection|traversal|exploit\w*|attackers?|"
        r"denial.of.service|dos|cwe-\d+|secrets?|passwords?|credentials?)\b",
        re.I,
    ),
    "performance": re.compile(
        r"\b(?:slow\w*|performance|perf|alloc\w*|memory|cpu|latency|benchmark\w*|regression|faster|optimi\w*|"
        r"throughput|ns/op|heap)\b",
        re.I,
    ),
    "docs": re.compile(r"\b(?:readme\w*|docs?|documentation|godoc|typos?|comments?|examples?|spelling)\b", re.I),
    "trivial": re.compile(r"\b(?:deprecated|ioutil|lint\w*|errcheck|bump\w*|go\.mod|rename\w*|chore|ci)\b", re.I),
    "feature": re.compile(r"\b(?:add|support|feature|option|flag|allow|implement|would be (?:nice|great))\b", re.I),
}

FEATURE_NAMES: tuple[str, ...] = (
    "stack_trace",
    *(f"words_{name}" for name in _WORDS),
    "files_named",
    "log_length",
    "empty_body",
)


def cheap_features(ticket: TicketFacts) -> list[float]:
    """The values of FEATURE_NAMES, in order (word counts and file counts as log1p)."""
    text = ticket.text()
    return [
        1.0 if _STACK.search(text) else 0.0,
        *(math.log1p(len(rx.findall(text))) for rx in _WORDS.values()),
        math.log1p(len(ticket.paths)),
        math.log1p(len(text)) / 10.0,
        0.0 if ticket.body.strip() else 1.0,
    ]

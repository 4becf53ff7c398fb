"""The one catalogue of credential shapes, and the redaction of credentials from text bound for a third party.

The rules are detect-secrets' regex plugins (kept as data in `rules.json`, see `credentials.rules`),
plus a few shapes detect-secrets lacks (fine-grained GitHub tokens, the other AWS key-id prefixes, any
`BEGIN … PRIVATE KEY`, Google and LLM API keys, bearer values, password assignments, and an unlabelled
AWS secret access key recognised by its shape and randomness).

Both sides use it, so it depends on neither: the servers' log redactor and publication scanner
(`servers.common.logging`, `servers.common.secrets`), and the agent's model gateway, which removes
credentials from everything it sends to a model's provider (`agent.llm.gateway.Redacting`).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from credentials.rules import RULES_FILE


@dataclass(frozen=True, slots=True)
class Rule:
    """One credential shape. `accept`, when set, must also hold for a match (the scanner checks it)."""

    kind: str
    pattern: re.Pattern[str]
    source: str
    accept: Callable[[str], bool] | None = None


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _random_looking(value: str) -> bool:
    """Base64 noise, not an identifier: high entropy and no long run of lowercase letters (words)."""
    longest_word = max((len(m) for m in re.findall(r"[a-z]+", value)), default=0)
    return _entropy(value) >= 4.3 and longest_word < 7


def _kind(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


# detect-secrets' `key = value` separator (Cloudant, IBM, SoftLayer): three overlapping space runs, so a
# keyword and a run of n spaces cost n³ steps ("key" and 2,000 spaces: 52 s). The same matches, each space run
# taken whole and the longest operator first: no value these rules accept starts with a space, `=`, `:` or `>`.
_CUBIC_SEPARATOR = "(?: *)(?:=|:|:=|=>| +|::)(?: *)"
_LINEAR_SEPARATOR = "(?:(?> *)(?>=>|:=|::|=|:)(?> *)|(?> +))"


def _linear(pattern: str) -> str:
    return pattern.replace(_CUBIC_SEPARATOR, _LINEAR_SEPARATOR)


def _detect_secrets_rules() -> tuple[Rule, ...]:
    document = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    return tuple(
        Rule(_kind(r["kind"]), re.compile(_linear(r["pattern"]), r["flags"]), f"detect-secrets:{r['plugin']}")
        for r in document["rules"]
    )


_B64 = "A-Za-z0-9/+"
_OWN: tuple[Rule, ...] = (
    Rule("github_token", re.compile(r"github_pat_[A-Za-z0-9_]{22,255}"), "goresolve"),
    Rule("aws_access_key", re.compile(r"(?:AGPA|AIDA|AROA|ANPA|ANVA|APKA)[A-Z0-9]{16}"), "goresolve"),
    Rule(
        "aws_secret_access_key",
        re.compile(r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
        "goresolve",
    ),
    # An AWS secret access key with no label: exactly 40 base64 characters with upper, lower and a digit
    # or symbol (a git SHA is lower-case hex), accepted only when it also looks random.
    Rule(
        "aws_secret_access_key",
        re.compile(
            rf"(?<![{_B64}=])(?=[{_B64}]{{0,39}}[a-z])(?=[{_B64}]{{0,39}}[A-Z])(?=[{_B64}]{{0,39}}[0-9/+])"
            rf"[{_B64}]{{40}}(?![{_B64}=])"
        ),
        "goresolve",
        accept=_random_looking,
    ),
    Rule("private_key", re.compile(r"BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY"), "goresolve"),
    Rule("google_api_key", re.compile(r"AIza[0-9A-Za-z_-]{35}"), "goresolve"),
    Rule("stripe_access_key", re.compile(r"(?:sk|rk)_live_[0-9A-Za-z]{20,}"), "goresolve"),
    Rule("llm_api_key", re.compile(r"sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{32,}"), "goresolve"),
    # "Bearer <value>" with a digit in the value: prose like "the bearer tokenValidationMiddleware" passes.
    Rule("bearer_token", re.compile(r"(?i)\bbearer\s+(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{20,}=*"), "goresolve"),
    Rule(
        "password_assignment",
        re.compile(r"(?i)\b(?:password|passwd|secret|api_?key)\s*[:=]\s*['\"][^'\"\s]{8,}['\"]"),
        "goresolve",
    ),
)

RULES: tuple[Rule, ...] = (*_detect_secrets_rules(), *_OWN)

# (kind, pattern): the redactor's view of the catalogue. It redacts every match, random-looking or not.
CREDENTIAL_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((r.kind, r.pattern) for r in RULES)


# detect-secrets rules that start with a literal and then a run (JWT, OpenAI, npm): a start that fails makes every
# later start inside that run fail the same way, so `matches` skips the run. As one regex search each was
# quadratic ("sk-" 13,000 times: 7.7 s). The rule's pattern -> (its literal start, the run that follows it).
_SKIP_RUN: dict[str, tuple[str, re.Pattern[str]]] = {
    r"eyJ[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.?[A-Za-z0-9-_.+/=]*?": ("eyJ", re.compile(r"[A-Za-z0-9-_=]*")),
    r"sk-[A-Za-z0-9-_]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}": ("sk-", re.compile(r"[A-Za-z0-9-_]*")),
    r"\/\/.+\/:_authToken=\s*(?:(?:npm_.+)|(?:[A-Fa-f0-9-]{36})).*": ("//", re.compile(r"[^\n]*")),
}


def matches(
    pattern: re.Pattern[str], text: str, skip: tuple[str, re.Pattern[str]] | None = None
) -> Iterator[re.Match[str]]:
    """`pattern.finditer(text)`, in linear time for the catalogue's rules too: every user of a rule's pattern
    (the redactors, the publication scan) matches through this.

    `skip`, (a literal every match starts with, the run after it that a failed start rules out), is the
    catalogue's own for its rules that need one; a caller may give one for a pattern of its own.
    """
    if skip is None:
        skip = _SKIP_RUN.get(pattern.pattern)
    if skip is None:
        yield from pattern.finditer(text)
        return
    prefix, run = skip
    at = 0
    while (at := text.find(prefix, at)) != -1:
        match = pattern.match(text, at)
        if match is None:
            skipped = run.match(text, at + len(prefix))  # (always matches: a run may be empty)
            at = skipped.end() if skipped is not None else at + 1
            continue
        yield match
        at = match.end()


def substitute(
    pattern: re.Pattern[str],
    swap: Callable[[re.Match[str]], str],
    text: str,
    skip: tuple[str, re.Pattern[str]] | None = None,
) -> str:
    """`pattern.sub(swap, text)`, in linear time for the catalogue's rules too (see `matches`)."""
    if skip is None and pattern.pattern not in _SKIP_RUN:
        return pattern.sub(swap, text)
    out: list[str] = []
    kept = 0
    for match in matches(pattern, text, skip):
        out += (text[kept : match.start()], swap(match))
        kept = match.end()
    out.append(text[kept:])
    return "".join(out)


# What stands where a credential was removed: `[credential removed: KIND]`.
REMOVED = "[credential removed: "

_KEY_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"  # RSA PRIVATE KEY, OPENSSH PRIVATE KEY, PGP PRIVATE KEY BLOCK
# A private key from its BEGIN line to its END line (or to the end of a text cut inside it).
PRIVATE_KEY_BLOCK = re.compile(rf"-----BEGIN ({_KEY_LABEL})-----[\s\S]*?(?:-----END \1-----|\Z)")
# The end of a key whose BEGIN line is not in the text (a view or an excerpt that starts inside it): the END line
# and the lines just above it that carry key material (a run of 16 or more base64 characters). Found by
# `_key_tails`, line by line: as one regex, `(?:^.*[A-Za-z0-9+/=]{16}.*\n)*.*-----END …-----`, each line
# matched in as many ways as it has runs, and the time grew twentyfold with every such line after "PRIVATE KEY".
_KEY_END = re.compile(rf"-----END {_KEY_LABEL}-----")
_KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/=]{16}")


def _last_key_end(line: str) -> int:
    """Where the last END line marker in `line` that starts last ends (-1 when there is none)."""
    end, at = -1, line.find("-----END ")
    while at != -1:
        marker = _KEY_END.match(line, at)
        if marker is not None:
            end = marker.end()
        at = line.find("-----END ", at + 1)
    return end


def _key_tails(text: str) -> str:
    """`text` with every key tail replaced, in one pass over its lines.

    A tail starts at the first of a run of lines that each carry key material and end in a newline, and ends
    with the last END marker of the furthest line, at most one past that run, that has one: a line
    marked in the run or the line just after it. A start that finds no marker leaves none to the run's later lines.
    """
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    material = [i < len(lines) - 1 and _KEY_MATERIAL.search(line) is not None for i, line in enumerate(lines)]
    out: list[str] = []
    kept = 0  # text[kept:] is not yet in `out`
    k = 0
    while k < len(lines):
        run_end = k  # the first line at or after k that does not carry material (or is the last line)
        while material[run_end]:
            run_end += 1
        for j in range(run_end, k - 1, -1):
            end = _last_key_end(lines[j])
            if end != -1:
                out.append(text[kept : starts[k]])
                out.append(f"{REMOVED}private_key]")
                kept = starts[j] + end
                k = j + 1  # (the rest of line j holds no marker that starts after this one's start)
                break
        else:
            k = run_end + 1
    out.append(text[kept:])
    return "".join(out)


# Shapes that match a label with the value (`password = "…"`, `aws_secret_access_key: …`): only the value goes.
_KEEPS_LABEL = frozenset({"password_assignment", "aws_secret_access_key"})
_LABELLED = re.compile(r"""(?P<label>.*?[:=]\s*['"]?)(?P<value>.*?)(?P<close>['"]?)""", re.DOTALL)


def redact_credentials(text: str) -> str:
    """`text` with every credential-shaped match of the catalogue replaced by `[credential removed: KIND]`
    (a private key from its BEGIN line to its END line, or to the end of the text when cut, or from the
    start of the key material above an END line whose BEGIN is not in the text; of a labelled value, the
    value only). Never raises.

    For text that goes to a model's provider, a third party: a ticket, an issue, code, a test's output. A
    pasted token is never needed to fix code. Matching is on the text as given; the stricter normalised
    `servers.common.secrets.scan` stays the gate for what goresolve publishes.
    """
    text = PRIVATE_KEY_BLOCK.sub(f"{REMOVED}private_key]", text)
    if "PRIVATE KEY" in text:
        text = _key_tails(text)
    for rule in RULES:

        def swap(match: re.Match[str], rule: Rule = rule) -> str:
            if rule.accept is not None and not rule.accept(match.group(0)):
                return match.group(0)
            labelled = _LABELLED.fullmatch(match.group(0)) if rule.kind in _KEEPS_LABEL else None
            if labelled is not None:  # `Password: "…"` stays a field and a string: the code still reads
                return f"{labelled['label']}{REMOVED}{rule.kind}]{labelled['close']}"
            return f"{REMOVED}{rule.kind}]"

        text = substitute(rule.pattern, swap, text)
    return text

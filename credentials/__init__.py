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
from collections.abc import Callable
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


def _detect_secrets_rules() -> tuple[Rule, ...]:
    document = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    return tuple(
        Rule(_kind(r["kind"]), re.compile(r["pattern"], r["flags"]), f"detect-secrets:{r['plugin']}")
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


# What stands where a credential was removed: `[credential removed: KIND]`.
REMOVED = "[credential removed: "

_KEY_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"  # RSA PRIVATE KEY, OPENSSH PRIVATE KEY, PGP PRIVATE KEY BLOCK
# A private key from its BEGIN line to its END line (or to the end of a text cut inside it).
PRIVATE_KEY_BLOCK = re.compile(rf"-----BEGIN ({_KEY_LABEL})-----[\s\S]*?(?:-----END \1-----|\Z)")
# The end of a key whose BEGIN line is not in the text (a view or an excerpt that starts inside it): the END line
# and the lines just above it that carry key material (a run of 16 or more base64 characters).
_KEY_TAIL = re.compile(rf"(?:^[^\n]*[A-Za-z0-9+/=]{{16}}[^\n]*\n)*[^\n]*-----END {_KEY_LABEL}-----", re.MULTILINE)


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
    if "PRIVATE KEY" in text:  # (the tail's pattern is tried at every line start: only where it can match)
        text = _KEY_TAIL.sub(f"{REMOVED}private_key]", text)
    for rule in RULES:

        def swap(match: re.Match[str], rule: Rule = rule) -> str:
            if rule.accept is not None and not rule.accept(match.group(0)):
                return match.group(0)
            labelled = _LABELLED.fullmatch(match.group(0)) if rule.kind in _KEEPS_LABEL else None
            if labelled is not None:  # `Password: "…"` stays a field and a string: the code still reads
                return f"{labelled['label']}{REMOVED}{rule.kind}]{labelled['close']}"
            return f"{REMOVED}{rule.kind}]"

        text = rule.pattern.sub(swap, text)
    return text

"""Credential shapes: one catalogue for the publication scanner and the log redactor.

The rules are detect-secrets' regex plugins (kept as data in `secret_rules.json`, see
`secret_rules.py`), plus a few shapes detect-secrets lacks (fine-grained GitHub tokens, the other
AWS key-id prefixes, any `BEGIN … PRIVATE KEY`, Google and LLM API keys, bearer values, password
assignments, and an unlabelled AWS secret access key recognised by its shape and randomness).
`servers.common.logging.Redactor` removes every pattern here from log lines and error messages.

`scan` and `scan_patch` look for credentials in text a bot is about to publish (pull request
titles, bodies, labels, comments, the lines a patch adds). A pull request is public to everyone who
can read the repository, and a model may paste whatever it saw. Text is matched after
normalisation, in two views of each line, so the usual disguises do not help:

- NFKC, invisible characters removed, dashes folded (`textnorm.for_scanning`): a zero-width space
  inside a token, fullwidth PEM dashes;
- the same with Markdown/HTML markup removed: a token split across backticks or emphasis.

Patterns are not anchored on word boundaries, so a prefix (`xAKIA…`) does not hide a key. Findings
name the kind and place, never the matched text, so a refusal cannot leak the secret it found.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from servers.common.secret_rules import RULES_FILE


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

# Markup a writer can put inside a token without changing how it reads: code spans, emphasis, HTML tags
# and comments, backslash escapes.
_MARKUP = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>\n]{0,200}>|[`*~]|\\(?=[^\w\s])")


@dataclass(frozen=True, slots=True)
class SecretFinding:
    """One credential-shaped match: which kind, in which field, on which 1-based line."""

    kind: str
    field: str
    line: int


def _kinds_in(line: str) -> set[str]:
    found: set[str] = set()
    views = {line, _MARKUP.sub("", line)}
    for rule in RULES:
        if rule.kind in found:
            continue
        for view in views:
            if any(rule.accept is None or rule.accept(m.group(0)) for m in rule.pattern.finditer(view)):
                found.add(rule.kind)
                break
    return found


def scan(text: str, field: str) -> list[SecretFinding]:
    """Every credential-shaped match in `text` after normalisation, one per (kind, line). Never raises."""
    from servers.common.textnorm import for_scanning  # here: the redactor (every process) needs no `regex`

    findings: list[SecretFinding] = []
    for lineno, line in enumerate(for_scanning(text).splitlines() or [""], start=1):
        findings.extend(SecretFinding(kind, field, lineno) for kind in sorted(_kinds_in(line)))
    return findings


def scan_patch(patch: str) -> list[SecretFinding]:
    """Credentials in file names and in the lines a unified diff adds; the field names the file (unless
    its name is itself the finding), the line is its new line number.

    A diff unidiff cannot parse is scanned line by line (every `+` line, numbered within the patch).
    Never raises.
    """
    from unidiff.errors import UnidiffParseError
    from unidiff.patch import PatchSet  # here, so that importing the redactor does not load the diff parser

    findings: list[SecretFinding] = []
    try:
        files = PatchSet(patch)
    except UnidiffParseError:
        for lineno, line in enumerate(patch.splitlines(), start=1):
            if line.startswith("+") and not line.startswith("+++ "):
                findings.extend(SecretFinding(f.kind, "patch", lineno) for f in scan(line[1:], "patch"))
        return findings
    for patched in files:
        named = [SecretFinding(f.kind, "patch file name", 0) for f in scan(patched.path, "patch")]
        findings.extend(named)
        where = "patch" if named else f"patch {patched.path}"  # a name that is a credential is never echoed
        for hunk in patched:
            for line in hunk:
                if line.is_added:
                    number = line.target_line_no or 0
                    findings.extend(SecretFinding(f.kind, where, number) for f in scan(line.value, where))
    return findings


_KEY_BLOCK = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----[\s\S]*?(?:-----END \1-----|\Z)")


def redact_credentials(text: str) -> str:
    """`text` with every credential-shaped match of the catalogue replaced by `[credential removed: KIND]`
    (a private key from its BEGIN line to its END line, or to the end of the text when cut). Never raises.

    For text a person wrote that goes to a model (a ticket, an issue): a pasted token is never needed to
    fix code, and the model's provider is a third party. Matching is on the text as given; the stricter
    normalised `scan` stays the gate for what goresolve publishes.
    """
    text = _KEY_BLOCK.sub("[credential removed: private_key]", text)
    for rule in RULES:

        def swap(match: re.Match[str], rule: Rule = rule) -> str:
            if rule.accept is not None and not rule.accept(match.group(0)):
                return match.group(0)
            return f"[credential removed: {rule.kind}]"

        text = rule.pattern.sub(swap, text)
    return text


def describe(findings: list[SecretFinding]) -> str:
    """A refusal message naming kinds and places, never the matched text."""
    places = ", ".join(f"{f.kind} in {f.field} line {f.line}" for f in findings[:5])
    more = f" (+{len(findings) - 5} more)" if len(findings) > 5 else ""
    return f"refused: text looks like it contains a credential ({places}{more}); remove it and retry"

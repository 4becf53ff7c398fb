"""Credential shapes: one catalogue for the publication scanner and the log redactor.

`scan` finds credential-shaped strings in text a bot is about to publish (PR titles, bodies, comments).

A pull request is public to everyone who can read the repository, and a model may paste whatever
it saw into a description. This scanner looks for the *shapes* of well-known credentials; it never
returns the matched text itself, only which kind matched and where, so the refusal message cannot
leak the secret it found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (kind, pattern). Patterns match the documented formats of each issuer; generic ones last.
# `servers.common.logging.Redactor` removes every one of these from log lines and error messages too.
CREDENTIAL_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("github_token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b")),
    ("github_fine_grained_token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b")),
    ("aws_access_key_id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[A-Z0-9]{16}\b")),
    ("aws_secret_access_key", re.compile(r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}\b")),
    ("private_key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("slack_webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("stripe_key", re.compile(r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}\b")),
    ("openai_key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    # "Bearer <value>" with a digit in the value: prose like "the bearer tokenValidationMiddleware" passes.
    ("bearer_token", re.compile(r"(?i)\bbearer\s+(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{20,}=*")),
    ("basic_auth_url", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]{1,64}:[^/\s@]{3,}@[^\s/]+")),
    (
        "password_assignment",
        re.compile(r"(?i)\b(?:password|passwd|secret|api_?key)\s*[:=]\s*['\"][^'\"\s]{8,}['\"]"),
    ),
)


@dataclass(frozen=True, slots=True)
class SecretFinding:
    """One credential-shaped match: which kind, in which field, on which 1-based line."""

    kind: str
    field: str
    line: int


def scan(text: str, field: str) -> list[SecretFinding]:
    """Every credential-shaped match in `text`, at most one per (kind, line). Never raises."""
    findings: list[SecretFinding] = []
    for lineno, line in enumerate(text.splitlines() or [text], start=1):
        for kind, pattern in CREDENTIAL_SHAPES:
            if pattern.search(line):
                findings.append(SecretFinding(kind=kind, field=field, line=lineno))
    return findings


def describe(findings: list[SecretFinding]) -> str:
    """A refusal message naming kinds and places, never the matched text."""
    places = ", ".join(f"{f.kind} in {f.field} line {f.line}" for f in findings[:5])
    more = f" (+{len(findings) - 5} more)" if len(findings) > 5 else ""
    return f"refused: text looks like it contains a credential ({places}{more}); remove it and retry"

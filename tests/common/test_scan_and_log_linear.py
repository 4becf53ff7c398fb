"""The publication scan and the log redactor take time linear in their text, and find what the plain regexes found.

Both match the catalogue's rules through `credentials.matches` / `credentials.substitute`, which skip the starts
a failed start rules out. Before, each ran every rule as one regex search, and the JWT, OpenAI and npm rules were
quadratic: a 40,000-character body of "sk-" took 2.9 s to scan and "/" 4.6 s, a 100,000-character patch line
24 s and 40 s. So were the scan's markup view (`<!--` with no `-->`: 1.7 s at 40,000) and the log redactor's
BEGIN … END pattern (BEGIN lines with no END). The references below are the two as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import servers.common.logging as log
import servers.common.secrets as secrets
from credentials import RULES
from servers.common.secrets import SecretFinding, scan, scan_patch
from servers.common.textnorm import for_scanning
from tests.common.test_credentials_linear import _PIECES, ADVERSARIAL  # pyright: ignore[reportPrivateUsage]

_MARKUP = secrets._MARKUP  # pyright: ignore[reportPrivateUsage]


def reference_scan(text: str, field: str) -> list[SecretFinding]:
    findings: list[SecretFinding] = []
    for lineno, line in enumerate(for_scanning(text).splitlines() or [""], start=1):
        found: set[str] = set()
        views = {line, _MARKUP.sub("", line)}
        for rule in RULES:
            if rule.kind in found:
                continue
            for view in views:
                if any(rule.accept is None or rule.accept(m.group(0)) for m in rule.pattern.finditer(view)):
                    found.add(rule.kind)
                    break
        findings.extend(SecretFinding(kind, field, lineno) for kind in sorted(found))
    return findings


def reference_log_text(redactor: log.Redactor, value: str) -> str:
    for secret in redactor._secrets:  # pyright: ignore[reportPrivateUsage]
        if secret in value:
            value = value.replace(secret, log.REDACTED)
    for pattern in log._PATTERNS:  # pyright: ignore[reportPrivateUsage]
        value = pattern.sub(log._keep_label, value)  # pyright: ignore[reportPrivateUsage]
    return value


_MARKUP_PIECES = ["<!--", "-->", "<", ">", "</", "<b>", "</i ", "a", "-", "--", "!", "`", "*", "~", "\\"]
_MORE = [*_MARKUP_PIECES, "\n", " ", "x" * 199, "-----BEGIN RSA PRIVATE KEY-----", "-----END PRIVATE KEY-----"]
_LOG = ["Bearer ", "token ", "basic\t", "Authorization: ", "x-api-key=", "password='", "secret:", "abcdefgh1234"]
texts = st.lists(st.sampled_from([*_PIECES, *_MORE, *_LOG]), max_size=40).map("".join)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([*_MARKUP_PIECES, "\n", " ", "x" * 199, "\u2028"]), max_size=30).map("".join))
@example("<!-->")
@example("<!--->")
@example("<!---->")
def test_markup_is_removed_exactly_as_the_single_regex_removed_it(text: str) -> None:
    assert secrets._unmarked(text) == _MARKUP.sub("", text)  # pyright: ignore[reportPrivateUsage]


@settings(max_examples=1000, deadline=None)
@given(texts)
def test_the_scan_finds_exactly_what_the_plain_regexes_found(text: str) -> None:
    assert scan(text, "body") == reference_scan(text, "body")


@settings(max_examples=1000, deadline=None)
@given(texts)
def test_the_log_redactor_removes_exactly_what_the_plain_regexes_removed(text: str) -> None:
    redactor = log.Redactor(["hunter2-secret"])
    assert redactor.text(text) == reference_log_text(redactor, text)


_MB = 1_000_000
SHAPES = {
    **ADVERSARIAL,
    "BEGIN lines with no END": "-----BEGIN PRIVATE KEY-----\n" * (_MB // 28),
    "BEGIN headers on one line with no END": "-----BEGIN PRIVATE KEY-----" * (_MB // 27),
    "comment starts with no end": "<!--" * (_MB // 4),
    "comment starts after a comment": "<!-- x -->" + "<!--" * (_MB // 4),
    "markup all through": "<!---->`*<b>\\!" * (_MB // 14),
}
# The largest text each caller passes: a body or comment github-pr publishes (60,000 characters), a patch
# (github-pr's default limit 200,000 bytes; here 1 MB, on one added line), a log line or an error message (about
# 1 MB: the largest text a server handles, a source file or an issue's file).
BODY, PATCH, LOG = 60_000, _MB, _MB


def _patch(added: str) -> str:
    lines = added.split("\n")
    return f"--- a/x.go\n+++ b/x.go\n@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)


# CPU seconds, not wall-clock: other processes on a loaded machine do not count. A quadratic shape took
# minutes before; linear ones take 1-3 s per megabyte here, so 10 s leaves room for a slower machine.
LINEAR_S = 10.0


def _timed(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


@pytest.mark.parametrize("text", SHAPES.values(), ids=SHAPES.keys())
def test_no_body_costs_the_scan_more_than_linear_time(text: str) -> None:
    assert _timed(lambda: scan(text[:BODY], "body")) < LINEAR_S


@pytest.mark.parametrize("text", SHAPES.values(), ids=SHAPES.keys())
def test_no_patch_costs_the_scan_more_than_linear_time(text: str) -> None:
    """The text as one added line (the worst for the per-line rules) and as the lines of one hunk."""
    one_line = text[:PATCH].replace("\n", " ")
    assert _timed(lambda: scan_patch(_patch(one_line))) < LINEAR_S
    assert _timed(lambda: scan_patch(_patch(text[:PATCH]))) < LINEAR_S


@pytest.mark.parametrize("text", SHAPES.values(), ids=SHAPES.keys())
def test_no_log_line_costs_the_redactor_more_than_linear_time(text: str) -> None:
    redactor = log.Redactor(["hunter2-secret"])
    assert _timed(lambda: redactor.text(text[:LOG])) < LINEAR_S


def test_a_begin_line_with_no_end_after_it_leaves_the_keys_before_it_redacted() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"
    text = f"{key} and {key}\n-----BEGIN PRIVATE KEY-----\n" * 3
    assert log.Redactor().text(text) == reference_log_text(log.Redactor(), text)
    assert "MIIE" not in log.Redactor().text(text)


def test_the_log_redactor_skips_only_its_own_private_key_pattern() -> None:
    skips = log._SKIPS  # pyright: ignore[reportPrivateUsage]
    assert set(skips) == {log._PRIVATE_KEY}  # pyright: ignore[reportPrivateUsage]
    assert all(pattern.pattern.startswith(prefix) for pattern, (prefix, _run) in skips.items())

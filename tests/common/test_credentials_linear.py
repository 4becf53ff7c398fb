"""`redact_credentials` takes time linear in its text, and removes what the plain regex catalogue removed.

The reference below is the redactor as it was, one `re.sub` per shape (detect-secrets' patterns as committed, the
cut-key tail as one regex): exact, but on some texts exponential ("PRIVATE KEY" then six lines of base64: 73 s)
or polynomial ("key" then 2,000 spaces: 52 s). The redactor must agree with it on every text small enough for
the reference to finish.
"""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import credentials
from credentials import PRIVATE_KEY_BLOCK, REMOVED, RULES, redact_credentials
from credentials.rules import RULES_FILE

_OLD_TAIL = re.compile(
    r"(?:^[^\n]*[A-Za-z0-9+/=]{16}[^\n]*\n)*[^\n]*-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----", re.MULTILINE
)
_COMMITTED = [re.compile(r["pattern"], r["flags"]) for r in json.loads(RULES_FILE.read_text("utf-8"))["rules"]]
LABELLED = credentials._LABELLED  # pyright: ignore[reportPrivateUsage]
_REFERENCE_PATTERNS = [*_COMMITTED, *(rule.pattern for rule in RULES[len(_COMMITTED) :])]


def reference(text: str) -> str:
    text = PRIVATE_KEY_BLOCK.sub(f"{REMOVED}private_key]", text)
    if "PRIVATE KEY" in text:
        text = _OLD_TAIL.sub(f"{REMOVED}private_key]", text)
    for rule, pattern in zip(RULES, _REFERENCE_PATTERNS, strict=True):

        def swap(match: re.Match[str], rule: credentials.Rule = rule) -> str:
            if rule.accept is not None and not rule.accept(match.group(0)):
                return match.group(0)
            keeps_label = rule.kind in credentials._KEEPS_LABEL  # pyright: ignore[reportPrivateUsage]
            labelled = LABELLED.fullmatch(match.group(0)) if keeps_label else None
            if labelled is not None:
                return f"{labelled['label']}{REMOVED}{rule.kind}]{labelled['close']}"
            return f"{REMOVED}{rule.kind}]"

        text = pattern.sub(swap, text)
    return text


_PIECES = [
    *("\n", " ", "  ", "\t", "=", ":", "=>", ":=", "::", '"', "'", "[", "]", "_", "-", ".", "/", "@", "x", "Q"),
    *("PRIVATE KEY", "-----END RSA PRIVATE KEY-----", "-----END PRIVATE KEY BLOCK-----", "-----END ", "RSA ", "KEY"),
    *("-----BEGIN RSA PRIVATE KEY-----", "-----", "A" * 16, "AAAA", "Zm9v+/=", "9f86d081884c7d659a2feaa0c55ad015"),
    *("key", "cloudant", "ibm", "cloud_iam", "softlayer", "api", "token", "password", "secret", "bearer", "aws"),
    *("0123456789abcdef" * 4, "abcdefghijklmnopqrstuvwx", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0+/wz"),
    *("eyJ", "eyJhbGciOiJIUzI1NiJ9", "sk-", "T3BlbkFJ", "A1b2C3d4E5f6G7h8I9j0", "//", "/:_authToken=", "npm_"),
    *("xoxb-", "1-", "AKIA", "ABCDEFGHIJKLMNOP", "ghp_", "github_pat_", "://", "sk_live_", "AIza", "AKC", "AP1"),
]
texts = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_the_redactor_removes_exactly_what_the_plain_regex_catalogue_removes(text: str) -> None:
    assert redact_credentials(text) == reference(text)


KEY, END = "PRIVATE KEY", "-----END RSA PRIVATE KEY-----"


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["\n", " ", "x", "A" * 16, KEY, END]), max_size=40))
def test_a_cut_key_tail_is_found_where_the_single_regex_found_it(pieces: list[str]) -> None:
    text = "".join(pieces)
    tails = credentials._key_tails(text)  # pyright: ignore[reportPrivateUsage]
    assert tails == _OLD_TAIL.sub(f"{REMOVED}private_key]", text)


_MB = 1_000_000
# Each took minutes or more with the plain regexes (the first two at 6 lines: 73 s and 56 s); the largest
# text a caller redacts is about 1 MB (a source file of code-search or an issue's file, 1 MiB; a ticket
# field, 2 million characters, is cut to its limit first).
ADVERSARIAL = {
    "base64 lines after PRIVATE KEY": "PRIVATE KEY\n" + ("A" * 40 + "\n") * (_MB // 41),
    "sha256 vectors after PRIVATE KEY": "// Vectors signed with the PRIVATE KEY in testdata\nvar d = []string{\n"
    + '\t"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",\n' * (_MB // 70),
    "one long line after PRIVATE KEY": "PRIVATE KEY " + "A" * _MB,
    "END and words": "PRIVATE KEY -----END " + "A " * (_MB // 2),
    "keyword and spaces": "key" + " " * _MB + "!",
    "keywords and spaces": ("api_key" + " " * 1000 + "!") * (_MB // 1008),
    "JWT starts": "eyJ" * (_MB // 3),
    "OpenAI starts": "sk-" * (_MB // 3) + "!",
    "npm starts": "/" * _MB + "/:_authToken=!",
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_no_text_costs_more_than_linear_time(text: str) -> None:
    """About a second per megabyte for any of them (generous: 5 s); before, the smallest of them took minutes."""
    start = time.process_time()
    redact_credentials(text)
    assert time.process_time() - start < 5.0


def test_a_rule_the_redactor_skips_runs_of_is_still_in_the_committed_catalogue() -> None:
    """A detect-secrets update that changes one of these patterns must revisit its skipping."""
    patterns = {rule.pattern.pattern for rule in RULES}
    assert set(credentials._SKIP_RUN) <= patterns  # pyright: ignore[reportPrivateUsage]
    assert sum(credentials._LINEAR_SEPARATOR in p for p in patterns) == 5  # pyright: ignore[reportPrivateUsage]


def test_every_key_value_separator_reads_as_before() -> None:
    """The rewritten separator of detect-secrets' keyword rules, on every short mix of spaces and operators."""
    values = ("0123456789abcdef" * 4, "abcdefghijklmnopqrstuvwx", "a1B2-c3D4_e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uv")
    parts = ["", " ", "  ", "=", ":", "=>", ":=", "::", ">", '"']
    for key in ("cloudant_key", "ibm_cloud_iam_api_key", "cos_hmac_secret_access_key", "softlayer_api_key", "key"):
        for value in values:
            for a, b, c in itertools.product(parts, repeat=3):
                text = f"x {key}{a}{b}{c}{value}' y"
                assert redact_credentials(text) == reference(text), text

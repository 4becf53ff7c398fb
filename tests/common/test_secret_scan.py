"""The credential scanner sees through disguises, scans what a patch adds, shares one catalogue with the redactor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credentials import CREDENTIAL_SHAPES, RULES, redact_credentials
from credentials.rules import RULES_FILE, from_detect_secrets, non_capturing, render
from servers.common.logging import REDACTED, Redactor
from servers.common.secrets import describe, scan, scan_patch
from servers.common.textnorm import for_scanning

GHP = "ghp_" + "aB3x" * 9
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"token {GHP[:10]}\u200b{GHP[10:]}", "github_token"),  # zero-width space inside the token
        (f"token {GHP[:10]}\u2060{GHP[10:20]}\ufeff{GHP[20:]}", "github_token"),
        (f"token `{GHP[:12]}``{GHP[12:]}`", "github_token"),  # split across code spans
        (f"token **{GHP[:12]}**{GHP[12:]}", "github_token"),  # split by emphasis
        (f"token {GHP[:12]}<b></b>{GHP[12:]}", "github_token"),  # split by an HTML tag
        ("xAKIA" + "ABCDEFGHIJKLMNOP", "aws_access_key"),  # glued to a prefix
        ("\uff0d" * 5 + "BEGIN RSA PRIVATE KEY" + "\uff0d" * 5, "private_key"),  # fullwidth dashes
        ("\u2013" * 5 + "BEGIN ENCRYPTED PRIVATE KEY" + "\u2013" * 5, "private_key"),
        (f"the secret is {AWS_SECRET} (rotate it)", "aws_secret_access_key"),  # no label at all
        ("\uff47\uff48\uff50_" + "aB3x" * 9, "github_token"),  # fullwidth letters fold under NFKC
        ("github_pat_" + "11AB" * 8, "github_token"),
        (f"see ghp\\_{GHP[4:]}", "github_token"),  # a Markdown escape of `_`: GitHub renders ghp_…
        (f"see g&#104;p_{GHP[4:]}", "github_token"),  # an HTML character reference, decimal
        (f"see ghp&#95;{GHP[4:]}", "github_token"),
        (f"see ghp&#x5F;{GHP[4:]}", "github_token"),  # hexadecimal
        (f"see ghp&lowbar;{GHP[4:]}", "github_token"),  # named
        (f"see g<b>&#104;</b>p&#95;{GHP[4:]}", "github_token"),  # a tag and references together
        (f"see ghp_{GHP[4:12]}&#8203;{GHP[12:]}", "github_token"),  # a reference to an invisible character
    ],
)
def test_disguised_credentials_are_found(text: str, kind: str) -> None:
    assert kind in {f.kind for f in scan(text, "body")}


@pytest.mark.parametrize(
    "text",
    [
        "commit e3b0c44298fc1c149afbf4c8996fb92427ae41e4 fixed it",  # a git SHA: lower-case hex
        "func TestThisIsAVeryLongGoIdentifierName123456789(t *testing.T)",
        "See internal/ratelimit/limiter.go and pkg/server/handlers/AuthMiddleware.go",
        "the deadline is 2s; `ctx, cancel := context.WithTimeout(ctx, 2*time.Second)`",
        "use `a &amp;&amp; b` or &lt;b&gt;, and escape \\_ or \\* in Markdown",
        'if p := &cfg; p.Token == "" && ok { return &Client{} }',
    ],
)
def test_ordinary_code_and_prose_pass(text: str) -> None:
    assert scan(text, "body") == []


def test_a_patch_is_scanned_on_the_lines_it_adds_only() -> None:
    patch = (
        "diff --git a/auth.go b/auth.go\n--- a/auth.go\n+++ b/auth.go\n@@ -1,3 +1,3 @@\n package auth\n"
        f'-const old = "{GHP}"\n+const token = "{GHP}"\n // end\n'
    )
    found = scan_patch(patch)
    assert [(f.kind, f.field, f.line) for f in found] == [("github_token", "patch auth.go", 2)]
    assert GHP not in repr(found)
    removal_only = patch.replace(f'+const token = "{GHP}"\n', "")
    assert scan_patch(removal_only.replace("@@ -1,3 +1,3 @@", "@@ -1,3 +1,2 @@")) == []


def test_an_unparseable_patch_is_still_scanned_line_by_line() -> None:
    assert [f.kind for f in scan_patch(f"+++ not a diff\n+{GHP}\n")] == ["github_token"]


@given(st.text(max_size=200))
def test_the_scanner_never_raises_and_never_returns_text(text: str) -> None:
    for finding in scan(text, "body") + scan_patch(text):
        assert finding.line >= 0
        assert finding.kind in {r.kind for r in RULES}


def test_normalisation_folds_width_and_drops_invisibles() -> None:
    assert for_scanning("\uff0d\u200bA\u00adB\u2014") == "-AB-"


def test_the_redactor_uses_the_same_catalogue_and_never_keeps_a_captured_secret() -> None:
    assert len(CREDENTIAL_SHAPES) == len(RULES)
    assert all(pattern.groups == 0 for _kind, pattern in CREDENTIAL_SHAPES)
    line = f"aws_key = '{AWS_SECRET}' and {GHP}"
    out = Redactor().text(line)
    assert AWS_SECRET not in out
    assert GHP[4:] not in out
    assert REDACTED in out


def test_capture_groups_become_non_capturing_but_classes_and_escapes_stay() -> None:
    assert non_capturing(r"(a|b)[(]\((?P<x>c)(?:d)") == r"(?:a|b)[(]\((?:c)(?:d)"
    with pytest.raises(ValueError, match="back-reference"):
        non_capturing(r"(a)\1")


def test_the_committed_rules_are_those_of_the_installed_detect_secrets() -> None:
    assert RULES_FILE.read_text(encoding="utf-8") == render(from_detect_secrets()), (
        "credentials/rules.json is stale: run `python -m credentials.rules`"
    )


def test_a_file_named_like_a_credential_is_found_and_its_name_never_echoed() -> None:
    patch = (
        f"diff --git a/{GHP}.go b/{GHP}.go\nnew file mode 100644\n--- /dev/null\n+++ b/{GHP}.go\n@@ -0,0 +1 @@\n+x\n"
    )
    found = scan_patch(patch)
    assert [(f.kind, f.field) for f in found] == [("github_token", "patch file name")]
    assert GHP not in describe(found)


PLAIN_CREDENTIALS = [
    GHP,
    "github_pat_" + "11AB" * 8,
    "AKIA" + "ABCDEFGHIJKLMNOP",
    f"aws_secret_access_key = {AWS_SECRET}",
    f"the secret is {AWS_SECRET} (rotate it)",
    "sk-ant-api03-" + "x9Y8" * 10,
    "AIza" + "Sy" + "A1b2C3d4" * 4 + "e",
    "Authorization: Bearer 7f3a9c2e1b8d4f6a0e5c9b3d2a1f8e7c",
    "xoxb-1234567890-abcdefghij",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "postgres://app:s3cretpass@db.internal:5432/orders",
    'password = "hunter2hunter2"',
]


@pytest.mark.parametrize("credential", PLAIN_CREDENTIALS)
def test_a_pasted_credential_is_removed_from_ticket_text_and_the_rest_kept(credential: str) -> None:
    text = f"Login fails on staging.\n\nconfig: {credential}\n\nSee auth/handler.go:42"
    assert scan(text, "ticket")  # it is a credential
    redacted = redact_credentials(text)
    assert scan(redacted, "ticket") == [] and "[credential removed: " in redacted
    assert redacted.startswith("Login fails on staging.\n\nconfig: ") and redacted.endswith("See auth/handler.go:42")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'cfg := Config{User: "app", Password: "hunter2hunter2"}',
            'cfg := Config{User: "app", Password: "[credential removed: password_assignment]"}',
        ),
        ("api_key='9f8e7d6c5b4a'", "api_key='[credential removed: password_assignment]'"),
        (
            f"aws_secret_access_key = {AWS_SECRET}\nregion = eu-west-1",
            "aws_secret_access_key = [credential removed: aws_secret_access_key]\nregion = eu-west-1",
        ),
        (f"the secret is {AWS_SECRET}.", "the secret is [credential removed: aws_secret_access_key]."),
    ],
)
def test_a_labelled_value_loses_only_its_value(text: str, expected: str) -> None:
    """Code shown to a model still reads as code: the field or key name and the quotes stay."""
    assert redact_credentials(text) == expected
    assert scan(expected, "code") == []


def test_a_private_key_goes_from_its_begin_line_to_its_end_line_or_to_the_end_of_a_cut_text() -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----"
    )
    assert redact_credentials(f"my key:\n{key}\nthanks") == "my key:\n[credential removed: private_key]\nthanks"
    assert redact_credentials(f"cut: {key[:60]}") == "cut: [credential removed: private_key]"


@pytest.mark.parametrize(
    "text",
    [
        "commit e3b0c44298fc1c149afbf4c8996fb92427ae41e4 fixed it",
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "goroutine 1 [running]:\nmain.handler(0xc000010000)\n\t/src/auth/handler.go:42 +0x1d",
        "func TestThisIsAVeryLongGoIdentifierName123456789(t *testing.T)",
        "the password field is empty; the API key check returns 401",
    ],
)
def test_ordinary_ticket_text_is_left_as_written(text: str) -> None:
    assert redact_credentials(text) == text


PEM_LINES = [
    "-----BEGIN RSA PRIVATE KEY-----",
    "MIIEowIBAAKCAQEAvJ1kq3mZbN2pQ8xR4tW7yU0iO9pL6kJ3hG5fD2sA1zX8cV4b",
    "nM7qW2eR5tY8uI1oP4aS7dF0gH3jK6lZ9xC2vB5nM8qW1eR4tY7uI0oP3aS6dF9g",
    "-----END RSA PRIVATE KEY-----",
]


def test_a_key_whose_begin_line_is_cut_off_is_removed_from_its_material_to_its_end_line() -> None:
    """An excerpt that starts inside a key (a view of lines 3 onwards) still loses the key material."""
    excerpt = "\n".join(["    3  " + line for line in PEM_LINES[2:]] + ["    5  `", "    6  func Sign() {}"])
    assert redact_credentials(excerpt) == "[credential removed: private_key]\n    5  `\n    6  func Sign() {}"
    whole = "\n".join(["const key = `", *PEM_LINES, "`"])
    assert redact_credentials(whole) == "const key = `\n[credential removed: private_key]\n`"


@pytest.mark.parametrize(
    "text",
    ["&" * 1_000_000, "&#" * 500_000, "&#x5F" * 200_000, "&lowbar" * 140_000, "\\_" * 500_000, "&#104;<b>" * 100_000],
    ids=["ampersands", "reference starts", "unterminated references", "unterminated names", "escapes", "mixed"],
)
def test_the_character_reference_view_keeps_the_scan_linear(text: str) -> None:
    """The decoded view is one more pass over the line: a body of 60,000 characters and an added line of 200,000
    (github-pr's default patch limit) take well under a second (tests/common/test_scan_and_log_linear.py: 1 MB)."""
    import time

    from tests.common.test_scan_and_log_linear import _patch  # pyright: ignore[reportPrivateUsage]

    start = time.process_time()
    scan(text[:60_000], "body")
    scan_patch(_patch(text[:200_000]))
    assert time.process_time() - start < 5.0

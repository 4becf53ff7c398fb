"""Bidirectional control characters ("Trojan Source", CVE-2021-42574) and C1 controls in what github-pr
publishes: refused in titles, labels and the lines a patch adds; in bodies and comments each becomes U+FFFD,
which shows where it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.common.errors import InvalidInput
from servers.common.policy import Policies
from servers.github_pr.sanitise import sanitise_markdown
from servers.github_pr.store import PullStore

from .conftest import FIX_PATCH, local_service, open_fix

BIDI = [*"\u202a\u202b\u202c\u202d\u202e", *"\u2066\u2067\u2068\u2069", *"\u200e\u200f\u061c"]


@pytest.mark.parametrize("char", [*BIDI, "\x85", "\x9b", "\x7f"])
def test_a_title_with_a_bidi_or_c1_control_is_refused(
    tmp_path: Path, remote: Path, policies: Policies, char: str
) -> None:
    service = local_service(tmp_path, remote, policies)
    with pytest.raises(InvalidInput, match="title must"):
        open_fix(service, policies, FIX_PATCH, title=f"Fix Add {char}dda xiF")
    assert PullStore(tmp_path / "state" / "prs.sqlite").by_ticket("svc", "SVC-7") is None


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f", "\x9b", "\x7f"])
def test_a_label_with_a_bidi_or_c1_control_is_refused(
    tmp_path: Path, remote: Path, policies: Policies, char: str
) -> None:
    service = local_service(tmp_path, remote, policies)
    with pytest.raises(InvalidInput, match="not a valid entry in labels"):
        open_fix(service, policies, FIX_PATCH, labels=("bug", f"needs{char}review"))


def test_a_patch_adding_a_bidi_control_is_refused_before_anything_is_pushed(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    service = local_service(tmp_path, remote, policies)
    trojan = FIX_PATCH.replace("+\treturn a + b", "+\treturn a + b /*\u202e } \u2066if isAdmin\u2069 \u2066 */")
    assert trojan != FIX_PATCH
    with pytest.raises(InvalidInput, match=r"bidi_control.*U\+202E.*\\u202e inside a string literal"):
        open_fix(service, policies, trojan)


def test_bodies_and_comments_show_each_bidi_control_as_a_replacement_character(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    service = local_service(tmp_path, remote, policies)
    body = "Fixed \u202eAdd\u202c.\n\n```go\nx := 1 /* \u2066 */\n```\n\nand `\u200f`"
    ref = open_fix(service, policies, FIX_PATCH, body=body)
    stored = PullStore(tmp_path / "state" / "prs.sqlite")
    assert stored.get("svc", ref.number).body.startswith(
        "Fixed \ufffdAdd\ufffd.\n\n```go\nx := 1 /* \ufffd */\n```\n\nand `\ufffd`\n"
    )
    service.comment("agent", policies.identity("agent"), "svc", ref.number, "see \u2067line\u2069")
    assert stored.comments("svc", ref.number) == ["see \ufffdline\ufffd"]


@pytest.mark.parametrize("char", BIDI)
def test_the_sanitiser_counts_each_bidi_control_and_a_second_pass_changes_nothing(char: str) -> None:
    result = sanitise_markdown(f"a{char}b {char}@octocat")
    assert char not in result.text
    assert result.counts["bidi_controls"] == 2
    assert sanitise_markdown(result.text).text == result.text


def test_right_to_left_prose_without_controls_is_left_as_written() -> None:
    text = "שלום עולם and مرحبا"
    assert sanitise_markdown(text).text == text
    assert not sanitise_markdown(text).changed

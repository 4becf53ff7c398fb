"""Untrusted text as both ticket servers return it: invisible characters out, credentials out, size bounded."""

from __future__ import annotations

from servers.common.untrusted import REDACT_MARGIN, clean

TOKEN = "ghp_" + "aB3x" * 9


def test_a_credential_straddling_the_cut_is_removed_not_half_kept() -> None:
    text = "a" * 7990 + " " + TOKEN + "\n" + "b" * 50_000
    out = clean(text, 8000)
    assert out.truncated and "aB3x" not in out.text and "ghp_" not in out.text


def test_text_far_past_the_limit_is_counted_in_the_marker() -> None:
    text = "line\n" * 100_000  # 500,000 characters, far past the redaction window
    out = clean(text, 1000)
    assert out.truncated and len(out.text) < 1100
    kept = out.text.split("\n\n[… truncated ")[0]
    assert out.text.endswith(f"[… truncated {len(text.strip()) - len(kept)} characters]")


def test_a_long_key_removed_inside_the_window_still_marks_the_dropped_tail() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + "A" * 3000 + "\n-----END RSA PRIVATE KEY-----"
    text = "see " + key + " " + "z" * (REDACT_MARGIN + 10_000)
    out = clean(text, 8000)
    assert out.truncated and "AAAA" not in out.text
    assert out.text.startswith("see [credential removed: private_key] zzz")


def test_short_clean_text_is_returned_as_written() -> None:
    out = clean("  Add returns the difference\u200b instead of the sum  ", 8000)
    assert (out.text, out.truncated, out.trust) == ("Add returns the difference instead of the sum", False, "untrusted")

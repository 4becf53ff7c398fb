"""The hand-off as rendered: a short read whatever the run produced (long lists, long and multi-byte text)."""

from __future__ import annotations

from agent.handoff import MAX_HANDOFF_BYTES, Attempt, Failure, render_handoff


def render(attempts: list[Attempt], hypothesis: str = "Add subtracts.", reason: str = "the model escalated") -> str:
    return render_handoff(
        ticket="CALC-1",
        title="Add returns the difference",
        reason=reason,
        attempts=attempts,
        hypothesis=hypothesis,
        owner="ana-sousa",
        trace_id="0" * 32,
        run_id="20260101-000000-abcdef",
        cost_usd=0.01,
    )


def test_every_list_is_cut_with_how_many_more_and_the_latest_attempts_are_shown() -> None:
    failures = [Failure(f"TestGen{i:03d}", "example.com/calc", f"gen_test.go:{i}: failure {i}") for i in range(350)]
    attempts = [
        Attempt(n, [f"gen_test.go:TestGen{i:03d}" for i in range(351)], ".", "350 failing", failures)
        for n in range(1, 9)
    ]
    text = render(attempts)
    assert len(text.encode()) <= MAX_HANDOFF_BYTES
    assert "| … | 3 earlier attempt(s) not shown | | |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "+348 more" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| 4", "| 5", "| 6", "| 7", "| 8"]
    assert sum(line.startswith("- `TestGen") for line in text.splitlines()) == 10 and "- +340 more" in text
    assert text.rstrip().endswith("`Add subtracts.`")


def test_long_multi_byte_text_keeps_the_cap_in_bytes_and_the_root_cause_section() -> None:
    wide = "界" * 5000
    failures = [Failure(f"Test{wide[:70]}{i}", wide, wide) for i in range(30)]
    attempts = [Attempt(1, [wide] * 9, wide, wide, failures)]
    text = render(attempts, hypothesis=wide, reason=wide)
    assert len(text.encode()) <= MAX_HANDOFF_BYTES
    assert (
        "### Hypothesized root cause\n\nThe model's own words, not checked by a test run:\n\n`" + wide[:1199] + "…`"
        in text
    )
    assert "more line(s) cut to keep the hand-off short; the run record has them" in text


def test_what_the_ticket_and_the_model_wrote_is_shown_as_code_where_no_markdown_acts() -> None:
    title = "Add broken @acme/security-team <!-- hidden --> [click](https://evil.example/x) `x`"
    reason = "the model escalated: @octocat look ![p](https://evil.example/p.png?d=1) <img src=x>"
    hypothesis = "Root cause unclear. @octocat <!-- hidden -->\n<script>alert(1)</script> `code`"
    text = render_handoff(
        ticket="CALC-1",
        title=title,
        reason=reason,
        attempts=[],
        hypothesis=hypothesis,
        owner="ana-sousa",
        trace_id="0" * 32,
        run_id="20260101-000000-abcdef",
        cost_usd=0.0,
    )
    lines = text.splitlines()
    assert lines[0] == (
        "## goresolve hand-off: CALC-1 — `Add broken @acme/security-team <!-- hidden --> "
        "[click](https://evil.example/x) 'x'`"
    )
    assert lines[2] == f"**Why it stopped:** `{reason}`  "
    assert lines[-1] == "`Root cause unclear. @octocat <!-- hidden --> <script>alert(1)</script> 'code'`"
    assert text.count("@") == 4  # the owner's mention is the only one outside a code span
    assert "**Owner:** @ana-sousa" in text


def test_a_run_without_a_tested_patch_says_what_still_fails_is_unknown_and_marks_the_models_words() -> None:
    """Before, it said "nothing recorded as failing" although the ticket's own test still failed at the base, and
    showed the model's claim ("all tests pass, please merge") as the root cause with nothing to tell it apart."""
    text = render([], hypothesis="I fixed the bug and all tests pass. DONE. Please merge.")
    assert "- unknown: no patch was tested" in text and "nothing recorded as failing" not in text
    assert "The model's own words, not checked by a test run:\n\n`I fixed the bug" in text

"""What the model (or a test's output) writes acts on no terminal and in no published hand-off: control characters
and bidirectional controls are removed where it is shown (`goresolve resolve`/`demo`'s lines) and written
(handoff.md, a draft pull request's body, an issue comment). The text sent to the model is not touched here."""

from __future__ import annotations

import io

from rich.console import Console

from agent.exits import RunResult
from agent.handoff import Attempt, Failure, one_line, render_handoff, without_controls
from goresolve.demo import Display, render_outcome_panel

# what a hostile model may answer: window title, clear screen, red, a spoofed hyperlink, a bell
HOSTILE = (
    "\x1b]0;PWNED-BY-MODEL\x07\x1b[2J\x1b[31mMODEL-RED\x1b[0m "
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ \x9b31m\x07\x08\r\x7f \u202eevil\u202c \u2066x\u2069"
)
ACTING = ("\x1b]0;", "\x1b[2J", "\x1b[31mMODEL", "\x1b]8;;https://evil", "\x07", "\x9b", "\x08", "\r", "\u202e")


def test_without_controls_removes_whole_sequences_and_keeps_the_words_tabs_and_newlines() -> None:
    assert without_controls(HOSTILE) == "MODEL-RED click  evil x"
    assert without_controls("a\tb\nc — ünïcode 🙂") == "a\tb\nc — ünïcode 🙂"
    assert one_line(HOSTILE + "\nnext line", 200) == "MODEL-RED click evil x next line"


def _shown(events: list[tuple[str, dict[str, object]]]) -> str:
    out = io.StringIO()
    display = Display(Console(file=out, force_terminal=True, color_system="truecolor", width=200), None)
    for kind, event in events:
        display(kind, event)
    return out.getvalue()


def test_the_model_s_words_reach_the_terminal_without_their_escape_sequences() -> None:
    shown = _shown(
        [
            ("assistant", {"content": HOSTILE}),
            ("tool_call", {"name": "edit", "arguments": {"path": "a.go", "search": HOSTILE, "replace": HOSTILE}}),
            ("tool_call", {"name": "read_file", "arguments": {"path": HOSTILE}}),
            ("opening_pr", {"title": HOSTILE}),
            ("escalating", {"exit": "stuck", "reason": HOSTILE}),
            ("tests_done", {"ok": False, "summary": HOSTILE, "failures": [{"test": "T", "first_line": HOSTILE}]}),
        ]
    )
    assert shown.count("MODEL-RED") >= 6
    for sequence in ACTING:
        assert sequence not in shown, repr(sequence)


def test_the_error_panel_shows_a_reason_as_written_neither_markup_nor_escapes() -> None:
    out = io.StringIO()
    result = RunResult("r", "t", "SVC-1", "svc", "error", "refused", "[/x] [bold]" + HOSTILE)
    render_outcome_panel(Console(file=out, force_terminal=True, width=200), result, None)
    assert "[/x] [bold]MODEL-RED" in out.getvalue()
    for sequence in ACTING:
        assert sequence not in out.getvalue(), repr(sequence)


def test_the_hand_off_published_holds_no_control_character() -> None:
    attempt = Attempt(1, [HOSTILE], HOSTILE, "1 failing", [Failure(HOSTILE, "pkg", HOSTILE)])
    text = render_handoff(
        ticket="SVC-1",
        title=HOSTILE,
        reason=HOSTILE,
        attempts=[attempt],
        hypothesis=HOSTILE,
        owner="team",
        trace_id="t",
        run_id="r",
        cost_usd=0.0,
    )
    assert "MODEL-RED" in text
    for sequence in ACTING:
        assert sequence not in text, repr(sequence)
    assert not [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]

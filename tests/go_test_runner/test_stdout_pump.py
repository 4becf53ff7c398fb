"""The stdout pump: whatever the read sizes, the same lines are delivered, up to the end marker's line."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from servers.go_test_runner.sandbox import _Ends, _pump_stdout, _Stdout

MARKER = "goresolve-end-0123456789abcdef01234567"
lines = st.lists(
    st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=30), max_size=30
)


def reference(data: bytes) -> tuple[list[str], int | None]:
    """What the pump must deliver, line by line: the lines before the marker's, its prefix, its exit code."""
    out: list[str] = []
    for raw in data.split(b"\n"):
        if (at := raw.find(MARKER.encode())) >= 0:
            if at:
                out.append(raw[:at].decode(errors="replace"))
            return out, int(raw[at + len(MARKER) :].strip() or b"-1")
        out.append(raw.decode(errors="replace"))
    if out and out[-1] == "":
        out.pop()  # the newline that ends the last line opens no new one
    return out, None


async def pump(data: bytes, cuts: list[int], *, max_line: int = 1 << 20, max_output: int = 1 << 30) -> Any:
    reader = asyncio.StreamReader()
    at = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        reader.feed_data(data[at:cut])
        at = max(at, cut)
    reader.feed_data(data[at:])
    reader.feed_eof()
    got: list[str] = []
    out = _Stdout(got.append, max_line, max_output)
    ends = _Ends(MARKER)
    await _pump_stdout(SimpleNamespace(stdout=reader), out, ends)  # type: ignore[arg-type]
    return got, ends.code if ends._seen else None, out


@settings(max_examples=300, deadline=None)
@given(
    before=lines,
    prefix=st.sampled_from(["", "tail without newline "]),
    code=st.integers(0, 255),
    after=lines,
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_any_chunking_delivers_the_lines_before_the_marker_and_its_exit_code(
    before: list[str], prefix: str, code: int, after: list[str], cuts: list[int]
) -> None:
    data = "".join(f"{line}\n" for line in before) + f"{prefix}{MARKER} {code}\n" + "".join(f"{a}\n" for a in after)
    encoded = data.encode()
    got, seen_code, _ = asyncio.run(pump(encoded, cuts))
    assert (got, seen_code) == reference(encoded)
    assert seen_code == code


@settings(max_examples=100, deadline=None)
@given(body=lines, cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_without_a_marker_every_line_is_delivered(body: list[str], cuts: list[int]) -> None:
    data = "".join(f"{line}\n" for line in body).encode()
    got, code, out = asyncio.run(pump(data, cuts))
    assert code is None and got == body and out.bytes == len(data)


def test_the_caps_cut_long_lines_and_drop_output_events_past_the_total() -> None:
    long_event = b'{"Action":"output","Output":"' + b"x" * 100 + b'"}'
    output = b'{"Action":"output","Output":"hi"}'
    passed = b'{"Action":"pass","Test":"TestA"}'
    data = b"\n".join([b"plain " + b"y" * 100, long_event, output, output, passed]) + b"\n"
    got, _, out = asyncio.run(pump(data, [7, 50], max_line=64, max_output=280))
    # a plain line is cut to the cap; a cut JSON event is dropped; past 280 bytes only non-output events pass
    assert got == [("plain " + "y" * 100)[:64], output.decode(), passed.decode()]
    assert out.truncated and out.bytes == len(data)

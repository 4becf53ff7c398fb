"""Wiki markup converts in linear time, to exactly what the plain regex conversion gave.

`reference` is the conversion as it was, one `re.sub` per construct: exact, but quadratic on unclosed
constructs (200,000 characters of `{noformat:a}`: 24 s; 40,000 of `{{`: 7 s).
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.jira_read.text import strip_invisible, wiki_to_markdown

_CODE = re.compile(r"\{(code|noformat)(?::([^}]*))?\}(.*?)\{\1\}", re.S)
_INLINE = (
    (re.compile(r"\{\{(.+?)\}\}"), r"`\1`"),
    (re.compile(r"\[([^|\]\n]+)\|([^\]\n]+)\]"), r"[\1](\2)"),
    (re.compile(r"(?<![\w*])\*(\S[^*\n]*?\S|\S)\*(?![\w*])"), r"**\1**"),
    (re.compile(r"(?<![\w_])_(\S[^_\n]*?\S|\S)_(?![\w_])"), r"*\1*"),
    (re.compile(r"(?<![\w-])-(\S[^-\n]*?\S)-(?![\w-])"), r"~~\1~~"),
)


def reference(text: str) -> str:
    text = strip_invisible(text)
    blocks: list[str] = []

    def stash(match: re.Match[str]) -> str:
        lang = (match.group(2) or "").split("|")[0] if match.group(1) == "code" else ""
        if "=" in lang:
            lang = ""
        blocks.append(f"```{lang}\n{match.group(3).strip(chr(10))}\n```")
        return f"\x00{len(blocks) - 1}\x00"

    text = _CODE.sub(stash, text.replace("\r\n", "\n"))
    text = re.sub(
        r"\{quote\}(.*?)\{quote\}",
        lambda m: "\n".join("> " + ln for ln in m.group(1).strip().split("\n")),
        text,
        flags=re.S,
    )
    lines = []
    for line in text.split("\n"):
        if m := re.match(r"^h([1-6])\.\s+(.*)$", line):
            line = "#" * int(m.group(1)) + " " + m.group(2)
        elif m := re.match(r"^bq\.\s+(.*)$", line):
            line = "> " + m.group(1)
        elif m := re.match(r"^([*#-]+)\s+(.*)$", line):
            marks = m.group(1)
            bullet = "1." if marks[-1] == "#" else "-"
            line = "  " * (len(marks) - 1) + f"{bullet} {m.group(2)}"
        elif line.strip() == "----":
            line = "---"
        for pattern, repl in _INLINE:
            line = pattern.sub(repl, line)
        lines.append(line)
    out = "\n".join(lines)
    return re.sub(r"\x00(\d+)\x00", lambda m: blocks[int(m.group(1))], out)


_PIECES = [
    *("{code}", "{code:go}", "{code:title=a|borderStyle=x}", "{code:", "{noformat}", "{noformat:a}", "{noformat"),
    *("{quote}", "{{", "}}", "{", "}", "[", "]", "|", "[a|b]", "*", "_", "-", "\n", "\r\n", "h1. ", "bq. ", "# "),
    *("x", "yz", " ", ":", "=", "code", "noformat", "\u200b"),
]
wiki = st.lists(st.sampled_from(_PIECES), max_size=50).map("".join)


@settings(max_examples=2000, deadline=None)
@given(wiki)
def test_the_conversion_is_that_of_the_plain_regexes(text: str) -> None:
    assert wiki_to_markdown(text) == reference(text)


_N = 2_000_000  # MAX_RAW_CHARS: no longer text is converted
ADVERSARIAL = {
    "unclosed noformat tags": "{noformat:a}" * (_N // 12),
    "unclosed code tags": "{code}" * (_N // 12) + "{noformat}" * (_N // 20),
    "tags without a brace": "{code:" * (_N // 6),
    "inline code never closed": "{{" * (_N // 2),
    "links never closed": "[a|" * (_N // 3),
    "link openings": "[" * _N,
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_unclosed_markup_converts_in_linear_time(text: str) -> None:
    """Well under a second each; with the plain regexes the smallest of them took minutes."""
    start = time.process_time()
    wiki_to_markdown(text)
    assert time.process_time() - start < 5.0

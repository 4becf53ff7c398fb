"""The overlay: reads once through the reader, edits unambiguously, and its diff applies with git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.overlay import EditError, Overlay

SRC = "package calc\n\n// Add returns a + b.\nfunc Add(a, b int) int {\n\treturn a - b\n}\n"


def reader_of(files: dict[str, str]):  # type: ignore[no-untyped-def]
    reads: list[str] = []

    async def read(path: str) -> str | None:
        reads.append(path)
        return files.get(path)

    return read, reads


async def test_an_edit_becomes_a_diff_that_git_applies(tmp_path: Path) -> None:
    read, reads = reader_of({"calc.go": SRC})
    overlay = Overlay(read)
    assert "    5  \treturn a - b" in await overlay.view("calc.go")
    await overlay.edit("calc.go", "return a - b", "return a + b")
    await overlay.edit("calc_extra_test.go", "", "package calc\n")
    assert reads == ["calc.go", "calc_extra_test.go"]
    assert overlay.functions_touched() == ["calc.go:Add", "calc_extra_test.go"]
    (tmp_path / "calc.go").write_text(SRC)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, timeout=30)
    subprocess.run(["git", "apply", "-"], cwd=tmp_path, input=overlay.diff(), text=True, check=True, timeout=30)
    assert (tmp_path / "calc.go").read_text() == SRC.replace("a - b", "a + b")
    assert (tmp_path / "calc_extra_test.go").read_text() == "package calc\n"


async def test_missing_or_ambiguous_search_text_is_a_correctable_error() -> None:
    overlay = Overlay(reader_of({"a.go": "x\nx\n"})[0])
    with pytest.raises(EditError, match="not found"):
        await overlay.edit("a.go", "y", "z")
    with pytest.raises(EditError, match="2 times"):
        await overlay.edit("a.go", "x", "z")
    with pytest.raises(EditError, match="relative"):
        await overlay.edit("../etc/passwd", "", "z")
    assert overlay.diff() == ""


async def test_a_file_code_search_does_not_serve_is_not_called_missing() -> None:
    """Before: "no file go.mod in the repository (create it ...)", so a model wrote a new-file diff of a file that
    exists (go.mod, a Makefile: code-search indexes Go and Markdown) and the patch did not apply. And an absolute
    path was refused as one "with '..'"."""
    overlay = Overlay(reader_of({"a.go": "x\n"})[0])
    with pytest.raises(EditError, match=r"go.mod, YAML, a Makefile, generated code\) may exist and cannot be read"):
        await overlay.view("Makefile")
    with pytest.raises(EditError, match="not absolute"):
        await overlay.view("/etc/passwd")


# git ends lines at \n only; str.splitlines also at \r, \v, \f, \x1c-\x1e, \x85, U+2028, U+2029
BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@given(st.lists(st.text(alphabet="ab \t}{\n" + BREAKS, max_size=30), min_size=1, max_size=6), st.booleans())
def test_diff_round_trips_through_git_apply_for_any_text(chunks: list[str], trailing_newline: bool) -> None:
    import tempfile

    import anyio

    old = "".join(chunks) + "end" + ("\n" if trailing_newline else "")
    new = old.replace("a", "b", 1) + "tail"

    async def go() -> str:
        overlay = Overlay(reader_of({"f.txt": old})[0])
        await overlay.text("f.txt")
        overlay.current["f.txt"] = new
        return overlay.diff()

    diff = anyio.run(go)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "f.txt").write_bytes(old.encode())
        subprocess.run(["git", "apply", "-"], cwd=tmp, input=diff.encode(), check=True, timeout=30)
        assert Path(tmp, "f.txt").read_bytes() == new.encode()


async def test_a_line_holding_u2028_or_a_form_feed_is_one_line_as_git_and_go_count_them(tmp_path: Path) -> None:
    """A correct one-line fix near such a character makes a patch git applies, and a view numbers lines as the
    compiler does (a measured case: a U+2028 in a comment three lines above the fix)."""
    src = SRC.replace("// Add returns a + b.", "// Add returns a + b.\u2028See the billing ADR.\x0c")
    overlay = Overlay(reader_of({"calc.go": src})[0])
    shown = await overlay.view("calc.go")
    assert shown.startswith("calc.go (lines 1-6 of 6)") and "    5  \treturn a - b" in shown
    await overlay.edit("calc.go", "return a - b", "return a + b")
    assert overlay.functions_touched() == ["calc.go:Add"]
    (tmp_path / "calc.go").write_bytes(src.encode())
    subprocess.run(["git", "apply", "-"], cwd=tmp_path, input=overlay.diff().encode(), check=True, timeout=30)
    assert (tmp_path / "calc.go").read_bytes() == src.replace("a - b", "a + b").encode()


KEYED = 'package calc\n\nconst key = "AKIAZ7Q4W2XK9LMN3PRT"\n\nfunc Add(a, b int) int {\n\treturn a - b\n}\n'
MARKER = "[credential removed: aws_access_key]"


async def test_an_edit_never_writes_the_marker_that_stands_for_a_credential() -> None:
    """The model saw `MARKER` where the file has a key: copying it into a replacement, or searching for it,
    is refused with the reason, and the key stays."""
    read, _ = reader_of({"calc.go": KEYED})
    overlay = Overlay(read)
    with pytest.raises(EditError, match=r"search text not found in calc.go: it contains \[credential removed: …\]"):
        await overlay.edit("calc.go", f'const key = "{MARKER}"', 'const key = ""')
    with pytest.raises(EditError, match=r"replace contains \[credential removed: …\]"):
        await overlay.edit("calc.go", "return a - b", f'return a + b // was "{MARKER}"')
    with pytest.raises(EditError, match=r"replace contains"):
        await overlay.edit("keys.go", "", f'package calc\n\nconst other = "{MARKER}"\n')
    assert overlay.diff() == ""
    await overlay.edit("calc.go", "return a - b", "return a + b")
    assert overlay.current["calc.go"] == KEYED.replace("a - b", "a + b")


async def test_a_file_that_really_holds_the_marker_text_can_still_be_edited() -> None:
    """Text that is literally in the file (goresolve's own sources, say) is not a credential's stand-in."""
    text = f'package secrets\n\nconst removed = "{MARKER}"\n'
    read, _ = reader_of({"marker.go": text})
    overlay = Overlay(read)
    await overlay.edit("marker.go", f'const removed = "{MARKER}"', f'const Removed = "{MARKER}"')
    assert overlay.current["marker.go"] == text.replace("const removed", "const Removed")


async def test_a_view_that_starts_inside_a_private_key_starts_at_its_begin_line() -> None:
    """So the gateway sees the BEGIN line and removes the key whole: no window shows bare key material."""
    material = "MHcCAQEEIBkq3mZbN2pQ8xR4tW7yU0iO9pL6kJ3hG5fD2sA1zX8c"
    key = f"-----BEGIN EC PRIVATE KEY-----\n{material}\n-----END EC PRIVATE KEY-----"
    text = f"package tls\n\nconst key = `{key}`\n\nfunc Load() {{}}\n"
    read, _ = reader_of({"key.go": text})
    overlay = Overlay(read)
    inside = await overlay.view("key.go", 4, 6)
    assert inside.startswith("key.go (lines 3-6 of 7)\n    3  const key = `-----BEGIN EC PRIVATE KEY-----")
    assert (await overlay.view("key.go", 6)).startswith("key.go (lines 6-7 of 7)")  # after the key: as asked
    assert (await overlay.view("key.go", 3, 3)).startswith("key.go (lines 3-3 of 7)")  # at its BEGIN line: as asked


async def test_aliases_of_a_path_are_one_file_and_a_directory_is_refused(tmp_path: Path) -> None:
    """`./calc.go` and `calc.go` were two overlay files, whose diff git refuses; `calc.go/` named a file too."""
    read, reads = reader_of({"calc.go": SRC})
    overlay = Overlay(read)
    await overlay.edit("calc.go", "return a - b", "return a + b")
    await overlay.edit("./calc.go", "// Add returns a + b.", "// Add sums.")
    assert "    3  // Add sums." in await overlay.view(".//calc.go")
    await overlay.edit("sub//./new.go", "", "package sub\n")
    assert overlay.changed() == ["calc.go", "sub/new.go"] and reads == ["calc.go", "sub/new.go"]
    for directory in ("calc.go/", "sub/"):
        with pytest.raises(EditError, match="names a directory"):
            await overlay.view(directory)
    with pytest.raises(EditError, match="relative"):
        await overlay.edit("sub/../../x.go", "", "x")
    (tmp_path / "calc.go").write_text(SRC)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, timeout=30)
    subprocess.run(["git", "apply", "-"], cwd=tmp_path, input=overlay.diff(), text=True, check=True, timeout=30)
    fixed = SRC.replace("a - b", "a + b").replace("Add returns a + b.", "Add sums.")
    assert (tmp_path / "calc.go").read_text() == fixed

"""`link_or_copy` puts a built program in place and leaves no temporary file beside it."""

from __future__ import annotations

import os
from pathlib import Path

from servers.common.tamper.tool import link_or_copy


def test_a_first_link_leaves_only_the_program(tmp_path: Path) -> None:
    src = tmp_path / "built"
    src.write_bytes(b"program")
    dest = tmp_path / "bin" / "sandbox-setup"
    dest.parent.mkdir()
    link_or_copy(src, dest)
    assert dest.read_bytes() == b"program" and os.path.samefile(src, dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["sandbox-setup"]


def test_linking_the_same_program_again_leaves_no_temporary_file(tmp_path: Path) -> None:
    """rename(2) of one hard link onto another of the same file does nothing: the `.tmp` name stayed."""
    src = tmp_path / "built"
    src.write_bytes(b"program")
    dest = tmp_path / "bin" / "sandbox-setup"
    dest.parent.mkdir()
    for _ in range(3):  # one per go-test-runner start
        link_or_copy(src, dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["sandbox-setup"]
    assert dest.read_bytes() == b"program"


def test_a_new_build_replaces_the_old_one(tmp_path: Path) -> None:
    dest = tmp_path / "sandbox-setup"
    dest.write_bytes(b"old")
    src = tmp_path / "built"
    src.write_bytes(b"new")
    link_or_copy(src, dest)
    assert dest.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "sandbox-setup"]

"""`goresolve resolve` through typer's runner, and the one-line refusal the CLI tests expect of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from goresolve.cli import app


def resolve_cli(tmp_path: Path, ticket: str, repo: str) -> Any:
    """`goresolve resolve --ticket TICKET --repo REPO` on an empty cassette (no model is ever asked)."""
    cassette = tmp_path / "session.jsonl"
    cassette.write_text("")
    return CliRunner().invoke(app, ["resolve", "--ticket", ticket, "--repo", repo, "--cassette", str(cassette)])


def one_error_line(done: Any) -> str:
    """The refusal of `done`: exit 1, one `error: ` line, no traceback and no catch-all."""
    assert done.exit_code == 1, done.output
    assert "Traceback" not in done.output and "unexpected" not in done.output, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.output
    return lines[0]

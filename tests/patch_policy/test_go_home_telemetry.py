"""go runs in temporary HOMEs with its telemetry off, so no detached telemetry child writes into a HOME after
its owner removed it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from servers.common.tamper import tool

GO = shutil.which("go")


@pytest.mark.skipif(GO is None, reason="needs the Go toolchain")
def test_build_env_home_has_telemetry_off(tmp_path: Path) -> None:
    assert GO is not None
    env = tool.go_build_env(GO, str(tmp_path))
    mode = subprocess.run([GO, "env", "GOTELEMETRY"], env=env, capture_output=True, text=True, check=True)
    assert mode.stdout.strip() == "off"


@pytest.mark.skipif(GO is None, reason="needs the Go toolchain")
def test_default_home_would_record(tmp_path: Path) -> None:
    """What the mode file changes: a fresh HOME otherwise gets go's default mode, which records counters."""
    assert GO is not None
    env = {"PATH": f"{Path(GO).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "GOTOOLCHAIN": "local"}
    mode = subprocess.run([GO, "env", "GOTELEMETRY"], env=env, capture_output=True, text=True, check=True)
    assert mode.stdout.strip() != "off"


def test_telemetry_off_is_idempotent(tmp_path: Path) -> None:
    tool.telemetry_off(tmp_path)
    tool.telemetry_off(tmp_path)
    assert (tmp_path / ".config/go/telemetry/mode").read_text() == "off\n"

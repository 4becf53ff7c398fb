"""Every test here gets its own per-user data directory (GORESOLVE_DATA_DIR), so none writes to the real one."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(path))
    return path

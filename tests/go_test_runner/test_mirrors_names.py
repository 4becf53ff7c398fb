"""An owner/name repository is mirrored under one file-name component, never a nested directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio

from servers.common.policy import Repo, ReposPolicy
from servers.go_test_runner.gitops import Mirrors


def _repo(path: Path) -> str:
    path.mkdir()
    run = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run([*run[:3], "init", "-q", "-b", "main"], check=True, timeout=30)
    (path / "go.mod").write_text("module example.com/x\n\ngo 1.22\n")
    subprocess.run([*run, "add", "go.mod"], check=True, timeout=30)
    subprocess.run([*run, "commit", "-qm", "init"], check=True, timeout=30)
    return subprocess.run([*run, "rev-parse", "HEAD"], check=True, timeout=30, capture_output=True, text=True).stdout


def test_an_owner_name_repository_is_mirrored_under_its_slug(tmp_path: Path) -> None:
    head = _repo(tmp_path / "src").strip()
    policy = ReposPolicy(repos={"acme/svc": Repo(path=str(tmp_path / "src"))})
    mirrors = Mirrors(tmp_path / "work", policy, tmp_path, fetch_interval_s=60)

    mirror, commit = anyio.run(mirrors.resolve, "acme/svc", "main")

    assert commit == head
    assert mirror == tmp_path / "work" / "mirrors" / "acme+svc.git"
    assert not (tmp_path / "work" / "mirrors" / "acme").exists()

"""Each tampering case of the review, and its variants, is refused by `goresolve check-patch` for its reason."""

from __future__ import annotations

import json
import pathlib

import pytest

from servers.go_test_runner.cli_check_patch import check_patch_command

from .tamper_cases import ALLOWED, CASES, Case, diff_for, victim_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return victim_repo(tmp_path_factory.mktemp("tamper"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_tampering_is_refused_for_its_reason(
    case: Case, repo: pathlib.Path, cache: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patch = tmp_path / "p.diff"
    patch.write_text(diff_for(repo, case.files))
    assert check_patch_command(patch, repo, True, cache_dir=cache) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert not verdict["allowed"]
    assert case.static in {r["rule"] for r in verdict["reasons"]}, verdict


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_patches_that_follow_the_policy_are_allowed(
    name: str, repo: pathlib.Path, cache: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patch = tmp_path / "p.diff"
    patch.write_text(diff_for(repo, ALLOWED[name]))
    assert check_patch_command(patch, repo, False, cache_dir=cache) == 0, capsys.readouterr().out

"""Each tampering case of the review, and its variants, is refused by `goresolve check-patch` for its reason."""

from __future__ import annotations

import json
import pathlib
import shutil
from pathlib import Path

import pytest

from servers.common.errors import UpstreamFailure
from servers.common.policy import ProtectedPolicy
from servers.common.tamper import tool
from servers.common.tamper.facts import Facts
from servers.go_test_runner.cli_check_patch import check_patch_command, verdict_for_checkout

from .tamper_cases import ALLOWED, CASES, Case, diff_for, victim_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return victim_repo(tmp_path_factory.mktemp("tamper"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def base(repo: pathlib.Path, cache: pathlib.Path) -> Facts:
    """The analyzer's facts for the victim, once (what check-patch computes on every call)."""
    go = shutil.which("go")
    assert go is not None
    return tool.analyze(tool.build_analyzer(go, cache), go, repo, ProtectedPolicy())


def test_check_patch_computes_the_base_facts_itself(
    repo: pathlib.Path, cache: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patch = tmp_path / "p.diff"
    patch.write_text(diff_for(repo, CASES[0].files))
    assert check_patch_command(patch, repo, True, cache_dir=cache) == 1
    assert CASES[0].static in {r["rule"] for r in json.loads(capsys.readouterr().out)["reasons"]}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_tampering_is_refused_for_its_reason(case: Case, repo: pathlib.Path, cache: pathlib.Path, base: Facts) -> None:
    verdict = verdict_for_checkout(repo, diff_for(repo, case.files), ProtectedPolicy(), cache, base=base)
    assert not verdict.allowed
    assert case.static in {r.rule for r in verdict.reasons}, verdict.render()


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_patches_that_follow_the_policy_are_allowed(
    name: str, repo: pathlib.Path, cache: pathlib.Path, base: Facts
) -> None:
    verdict = verdict_for_checkout(repo, diff_for(repo, ALLOWED[name]), ProtectedPolicy(), cache, base=base)
    assert verdict.allowed, verdict.render()


def test_binary_mode_and_non_go_files_follow_the_policy(repo: pathlib.Path, cache: pathlib.Path, base: Facts) -> None:
    mode = "diff --git a/calc.go b/calc.go\nold mode 100644\nnew mode 100755\n"
    verdict = verdict_for_checkout(repo, mode, ProtectedPolicy(), cache, base=base)
    assert [r.rule for r in verdict.reasons] == ["mode_change"]
    lax = ProtectedPolicy(allow_mode_changes=True)
    assert verdict_for_checkout(repo, mode, lax, cache, base=base).allowed
    script = diff_for(repo, {"scripts/run.sh": "echo hi\n"})
    assert [r.rule for r in verdict_for_checkout(repo, script, ProtectedPolicy(), cache, base=base).reasons] == [
        "non_go_file"
    ]
    binary = diff_for(repo, {"docs/logo.md": "\x00\x01binary\n"})
    git_binary = binary if "GIT binary patch" in binary or "Binary files" in binary else None
    assert git_binary is not None, binary
    rules = [r.rule for r in verdict_for_checkout(repo, binary, ProtectedPolicy(), cache, base=base).reasons]
    assert rules == ["binary_file"]


def test_the_analyzer_is_stopped_by_its_cpu_budget_not_the_hosts_load(tmp_path: Path) -> None:
    """A run over its CPU budget fails closed with a message saying so (prlimit, as on every sandbox host)."""
    if shutil.which("prlimit", path="/usr/bin:/bin") is None:
        pytest.skip("prlimit is not installed")
    spinner = tmp_path / "spin"
    spinner.write_text("#!/bin/sh\nwhile :; do :; done\n")
    spinner.chmod(0o755)
    go = shutil.which("go") or "go"
    with pytest.raises(UpstreamFailure, match="it used its CPU budget of 1 s"):
        tool.analyze(spinner, go, tmp_path, ProtectedPolicy(), cpu_s=1)

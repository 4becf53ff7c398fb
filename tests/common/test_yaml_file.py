"""The strict YAML loader: a repeated key, deep nesting, a directory or bytes that are not UTF-8 text are
refused with one line naming the file (and the line), never the last key silently winning.

The platform's loader (servers.common.yamlfile) and the agent's (agent.policy, which may not import
servers) are run through the same cases.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agent import policy as agent_policy
from goresolve.cli import app
from servers.common import yamlfile
from servers.common.errors import ConfigError
from servers.common.policy import load_policies
from servers.common.settings import DEFAULT_POLICY_DIR
from servers.jira_read.local import load_tickets
from tests.conftest import write_policies

Describe = Callable[[yaml.YAMLError], tuple[str, str]]
LOADERS: list[tuple[Callable[[str], Any], Describe, int]] = [
    (yamlfile.safe_load, yamlfile.describe, yamlfile.MAX_DEPTH),
    (agent_policy.safe_load, agent_policy.describe_yaml_error, agent_policy.MAX_YAML_DEPTH),
]
FILE_LOADERS: list[Callable[[Path], Any]] = [yamlfile.load_yaml_file, agent_policy.load_yaml_file]
runner = CliRunner()


@pytest.mark.parametrize(("load", "describe", "depth"), LOADERS)
def test_a_repeated_key_is_refused_naming_both_lines(
    load: Callable[[str], Any], describe: Describe, depth: int
) -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        load("identities:\n  a: {roles: [x]}\nroles: {}\nidentities:\n  b: {roles: [y]}\n")
    assert describe(caught.value) == ("line 4", "duplicate key 'identities' (first at line 1)")
    with pytest.raises(yaml.YAMLError, match="duplicate key 'allow_go_mod'"):
        load("paths: []\nnested:\n  allow_go_mod: false\n  allow_go_mod: true\n")
    with pytest.raises(yaml.YAMLError, match="duplicate key 'x'"):
        load("{x: 1, y: 2, x: 3}")


@pytest.mark.parametrize(("load", "describe", "depth"), LOADERS)
def test_ordinary_yaml_loads_as_safe_load_does(load: Callable[[str], Any], describe: Describe, depth: int) -> None:
    text = (
        "base: &base {wall_clock_s: 60, max_tokens: 10}\n"
        "tiers:\n  cheap:\n    <<: *base\n    wall_clock_s: 30\n"  # a merge key then an override: not a duplicate
        "list: [{a: 1}, {a: 2}]\n"
        "same_key_in_siblings: {a: {k: 1}, b: {k: 2}}\n"
    )
    assert load(text) == yaml.safe_load(text)
    assert load(text)["tiers"]["cheap"] == {"wall_clock_s": 30, "max_tokens": 10}
    assert load("") is None
    nested = "{a: " * (depth - 1) + "x" + "}" * (depth - 1)  # exactly at the bound (the scalar is a level)
    assert load(nested) == yaml.safe_load(nested)


@pytest.mark.parametrize(("load", "describe", "depth"), LOADERS)
def test_deep_nesting_is_refused_before_the_stack_runs_out(
    load: Callable[[str], Any], describe: Describe, depth: int
) -> None:
    for text in ("x: " + "[" * 5000 + "]" * 5000, "{a: " * depth + "x" + "}" * depth, "- " * 5000 + "x\n"):
        with pytest.raises(yaml.YAMLError) as caught:
            load(text)
        assert describe(caught.value)[1] == f"nested deeper than {depth} levels"


@pytest.mark.parametrize("load_file", FILE_LOADERS)
def test_a_bad_file_is_one_line_naming_it(load_file: Callable[[Path], Any], tmp_path: Path) -> None:
    cases = {
        "dup.yaml": ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key 'a' (first at line 1)"),
        "bin.yaml": (b"\x89PNG\r\n\x1a\n\xff\xfe", "not UTF-8 text (byte 0)"),
        "deep.yaml": ("k: " + "{a: " * 5000 + "1" + "}" * 5000, "nested deeper than"),
        "bad.yaml": ("a: [unclosed\n", "line 2: "),
    }
    for name, (body, expected) in cases.items():
        path = tmp_path / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
        with pytest.raises(ConfigError if load_file is yamlfile.load_yaml_file else agent_policy.PolicyError) as caught:
            load_file(path)
        message: str = caught.value.message
        assert name in message and expected in message and "\n" not in message, message
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(Exception, match=r"dir\.yaml: is a directory, not a file$"):
        load_file(tmp_path / "dir.yaml")
    with pytest.raises(Exception, match=r"none\.yaml: cannot read: No such file"):
        load_file(tmp_path / "none.yaml")


@pytest.mark.parametrize(
    ("file", "appended", "expected"),
    [
        # the audit's case: a second block that would replace the identities a reviewer read above it
        ("access.yaml", "identities:\n  reader: {roles: [agent]}\n", "duplicate key 'identities'"),
        ("protected.yaml", "max_patch_bytes: 1\nmax_patch_bytes: 2\n", "duplicate key 'max_patch_bytes'"),
    ],
)
def test_policies_with_a_repeated_key_do_not_load(tmp_path: Path, file: str, appended: str, expected: str) -> None:
    directory = write_policies(tmp_path / "p")
    path = directory / file
    path.write_text((path.read_text() if path.exists() else "") + appended)
    with pytest.raises(ConfigError) as caught:
        load_policies(directory)
    assert caught.value.message.startswith(f"{path}: line ") and expected in caught.value.message


def test_policy_check_refuses_binary_directory_and_deep_files(tmp_path: Path) -> None:
    cases: dict[str, Callable[[Path], object]] = {
        "access.yaml": lambda p: p.write_bytes(b"\x00\xff\xfe binary"),
        "budgets.yaml": lambda p: p.mkdir(),
        "protected.yaml": lambda p: p.write_text("paths:\n" + "  " + "- " * 5000 + "x\n"),
        "routing.yaml": lambda p: p.write_text("tiers: {}\ntiers: {}\n"),
    }
    for name, make in cases.items():
        directory = tmp_path / name.removesuffix(".yaml") / "policies"
        shutil.copytree(DEFAULT_POLICY_DIR, directory)
        (directory.parent / "examples" / "sample-service").mkdir(parents=True)  # repos.yaml's relative path
        target = directory / name
        target.unlink()
        make(target)
        result = runner.invoke(app, ["policy", "check", str(directory)])
        assert result.exit_code != 0, (name, result.output)
        assert "unexpected" not in result.output and name in result.output, (name, result.output)


def test_repo_add_names_a_repeated_key_instead_of_an_unexpected_error(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policy_dir)
    access = policy_dir / "access.yaml"
    before = access.read_text() + "identities:\n  triage-bot: {roles: [agent]}\n"
    access.write_text(before)
    repo = tmp_path / "svc"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    result = runner.invoke(app, ["repo", "add", str(repo), "--policy-dir", str(policy_dir)])
    assert result.exit_code != 0
    assert "duplicate key 'identities'" in result.output and "unexpected" not in result.output, result.output
    assert access.read_text() == before


def test_a_jira_ticket_file_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "SVC-1.yaml").write_text("key: SVC-1\nfields: {summary: a}\nkey: SVC-2\n")
    with pytest.raises(ConfigError, match=r"SVC-1\.yaml: line 3: duplicate key 'key' \(first at line 1\)"):
        load_tickets(tmp_path)

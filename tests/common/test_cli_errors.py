"""No traceback reaches a CLI user: every common mistake ends in one `error:` line (or click's usage message).

The commands run in process through the real entry point object (`goresolve.cli.app`, whose
`__call__` holds the outermost handler), so what is asserted is what a user sees on stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from goresolve import cli
from servers.common.settings import DEFAULT_POLICY_DIR as POLICY_DIR

Case = Callable[[Path], list[str]]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        cli.app(args=args, prog_name="goresolve")
    out = capsys.readouterr()
    code = ended.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def _git_repo(tmp: Path) -> Path:
    repo = tmp / "svc"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    return repo


def _bad_yaml(tmp: Path) -> Path:
    (tmp / "access.yaml").write_text("identities: [unclosed\n")
    (tmp / "tools.yaml").write_text("roles: {}\n")
    return tmp


def _policies(tmp: Path, *, routing: str | None = None, budgets: bool = True) -> Path:
    """A copy of the repository's policies, with routing.yaml replaced (or budgets.yaml removed)."""
    target = tmp / "policies"
    shutil.copytree(POLICY_DIR, target, ignore=shutil.ignore_patterns("schema"))
    repos = (POLICY_DIR / "repos.yaml").read_text().replace("path: ../", f"path: {POLICY_DIR.parent}/")
    (target / "repos.yaml").write_text(repos)
    if routing is not None:
        (target / "routing.yaml").write_text(routing)
    if not budgets:
        (target / "budgets.yaml").unlink()
        (target / "escalation.yaml").unlink()
    return target


UNPRICED = "tiers: {cheap: {model: no-such-model}}\nstrongest: cheap\nrules: []\n"

# (name, arguments built in a temp dir, expected exit code, text the one error line must contain)
ONE_LINE: list[tuple[str, Case, int, str]] = [
    ("resolve: no model", lambda t: ["resolve", "--ticket", "SVC-101", "--repo", "sample-service"], 1, "no model"),
    ("route: no such ticket file", lambda t: ["route", str(t / "none.json")], 1, "none.json"),
    ("search: no index yet", lambda t: ["search", "retry", "--repo", "svc"], 1, "no code index"),
    ("search: a bad mode", lambda t: ["search", "x", "--repo", "svc", "--mode", "fuzzy"], 2, "--mode"),
    ("search: an empty query", lambda t: ["search", "  ", "--repo", "svc"], 2, "the query is empty"),
    (
        "check-patch: no such policy directory",
        lambda t: ["check-patch", str(t / "p.diff"), "--repo", str(t), "--policy-dir", str(t / "none")],
        2,
        "is not a directory",
    ),
    ("policy check: no such dir", lambda t: ["policy", "check", str(t / "none")], 2, "required policy file"),
    ("policy check: broken YAML", lambda t: ["policy", "check", str(_bad_yaml(t))], 2, "invalid YAML"),
    (
        "policy check: a routed model without a price",
        lambda t: ["policy", "check", str(_policies(t, routing=UNPRICED))],
        2,
        "routing.yaml",
    ),
    (
        "policy check: routing without budgets",
        lambda t: ["policy", "check", str(_policies(t, budgets=False))],
        2,
        "needs budgets.yaml",
    ),
    ("token mint: no key", lambda t: ["token", "mint", "--subject", "a", "--server", "jira-read"], 2, "signing key"),
    (
        "token mint: empty subject",
        lambda t: ["token", "mint", "--subject", " ", "--server", "jira-read"],
        2,
        "not an identity",
    ),
    (
        "token mint: unreadable key file",
        lambda t: ["token", "mint", "--subject", "a", "--server", "jira-read", "--key-file", str(t / "k")],
        2,
        "cannot read the key file",
    ),
    ("audit verify: no such file", lambda t: ["audit", "verify", str(t / "none.jsonl")], 2, "no such file"),
    ("audit verify: a directory", lambda t: ["audit", "verify", str(t)], 2, "no such file"),
    ("repo add: not a repository", lambda t: ["repo", "add", str(t)], 2, "not a git repository"),
    (
        "repo add: unknown identity",
        lambda t: ["repo", "add", str(_git_repo(t)), "--grant", "nobody", "--policy-dir", str(t / "p")],
        2,
        "required policy file",
    ),
    ("model install: not a directory", lambda t: ["model", "install", "--dir", "/dev/null"], 1, "cannot write"),
    ("prs: --db a YAML file", lambda t: ["prs", "--db", str(_file(t, "x.yaml", "a: 1\n"))], 1, "x.yaml is not"),
    ("prs: --db a directory", lambda t: ["prs", "--db", str(t)], 1, "is a directory"),
    ("prs: --db no such file", lambda t: ["prs", "--db", str(t / "none.sqlite")], 1, "none.sqlite does not exist"),
]


def _file(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


# (name, arguments, text click's message must contain)
USAGE: list[tuple[str, Case, str]] = [
    ("unknown command", lambda t: ["frobnicate"], "No such command"),
    ("index: missing path", lambda t: ["index", str(t / "none"), "--repo", "svc"], "does not exist"),
    ("index: no --repo", lambda t: ["index", str(t)], "Missing option"),
    ("index: a name with +", lambda t: ["index", str(t), "--repo", "owner+name"], "invalid repository name"),
    ("search: a bad repo name", lambda t: ["search", "retry", "--repo", "a b"], "invalid repository name"),
    ("token mint: unknown server", lambda t: ["token", "mint", "--subject", "a", "--server", "jira"], "jira-read"),
    ("search: k out of range", lambda t: ["search", "x", "--repo", "svc", "--k", "0"], "--k"),
]


@pytest.mark.parametrize(("name", "case", "code", "text"), ONE_LINE, ids=[c[0] for c in ONE_LINE])
def test_a_common_mistake_ends_in_one_line(
    name: str,
    case: Case,
    code: int,
    text: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    del name
    monkeypatch.delenv("GORESOLVE_TOKEN_KEY", raising=False)
    exit_code, out, err = run(case(tmp_path), capsys)
    assert exit_code == code, err
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert text in errors[0]


@pytest.mark.parametrize(("name", "case", "text"), USAGE, ids=[c[0] for c in USAGE])
def test_a_usage_mistake_gets_clicks_message(
    name: str, case: Case, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del name
    exit_code, out, err = run(case(tmp_path), capsys)
    assert exit_code == 2
    assert "Traceback" not in out + err
    assert "Usage:" in err
    assert text in " ".join(err.replace("│", " ").split())


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import servers.common.policy

    def boom(_directory: Path) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(servers.common.policy, "load_policies", boom)
    monkeypatch.setattr(sys, "argv", ["goresolve", "policy", "check"])
    code, _out, err = run(["policy", "check"], capsys)
    assert code == 1
    assert err.strip().splitlines() == [
        "error: unexpected RuntimeError: disk on fire — run again with --debug for the stack and report it"
    ]
    monkeypatch.setattr(sys, "argv", ["goresolve", "--debug", "policy", "check"])
    code, _out, err = run(["--debug", "policy", "check"], capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err and "disk on fire" in err
    assert err.strip().splitlines()[-1].endswith("disk on fire — report it with the stack above")


def test_the_console_script_prints_one_line_for_a_run_without_a_model(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "goresolve.cli", "resolve", "--ticket", "SVC-101", "--repo", "sample-service"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: no model: set GORESOLVE_AGENT_PROVIDER")


def test_a_second_demo_on_one_data_directory_stops_before_touching_the_first_ones_state(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from servers.common.locks import take_lock

    running = take_lock(data_dir / "demo.lock")  # what a running `goresolve demo` holds
    state = data_dir / "demo" / "state" / "github-pr"
    state.mkdir(parents=True)
    (state / "prs.sqlite").write_bytes(b"the first demo's")
    try:
        code, out, err = run(["demo"], capsys)
    finally:
        running.close()
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        f"error: another `goresolve demo` (pid {os.getpid()}) is running on {data_dir}: wait for it to finish, "
        "or give this one its own GORESOLVE_DATA_DIR"
    ]
    assert (state / "prs.sqlite").read_bytes() == b"the first demo's"


@pytest.mark.parametrize("under", [False, True], ids=["the file itself", "a directory under it"])
@pytest.mark.parametrize("command", [["index", ".", "--repo", "svc"], ["prs"], ["runs"]])
def test_a_data_directory_that_is_a_file_is_one_line(
    under: bool,
    command: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = _file(tmp_path, "data", "")
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(file / "sub" if under else file))
    code, out, err = run(command, capsys)
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"error: the data directory {file / 'sub' if under else file} cannot be made: "
        f"{file if under else 'it'} is a file, not a directory; set GORESOLVE_DATA_DIR to a directory (or unset "
        "it for the per-user default)"
    ]


def test_no_pull_requests_yet_is_an_empty_result_not_an_error(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["prs", "--json"], capsys)
    assert (code, out.strip(), err) == (0, "[]", "")
    code, out, err = run(["prs"], capsys)
    assert code == 0 and "error" not in err
    assert f"no pull requests yet ({data_dir / 'github-pr' / 'prs.sqlite'} does not exist)" in err

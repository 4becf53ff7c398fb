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
from servers.code_search.minilm import default_cache_dir
from servers.common.settings import DEFAULT_POLICY_DIR as POLICY_DIR

INSTALLED_MODELS = default_cache_dir()  # resolved before the per-test data directory: the model installed here

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


HASHING = ("--embedder", "hashing")  # a model-less embedder: the case is about something else than the model
UNPRICED = "tiers: {cheap: {model: no-such-model}}\nstrongest: cheap\nrules: []\n"

# (name, arguments built in a temp dir, expected exit code, text the one error line must contain)
ONE_LINE: list[tuple[str, Case, int, str]] = [
    ("resolve: no model", lambda t: ["resolve", "--ticket", "SVC-101", "--repo", "sample-service"], 1, "no model"),
    ("route: no such ticket file", lambda t: ["route", str(t / "none.json")], 1, "none.json"),
    ("search: no index yet", lambda t: ["search", "retry", "--repo", "svc", *HASHING], 1, "no code index"),
    ("search: a bad mode", lambda t: ["search", "x", "--repo", "svc", "--mode", "fuzzy", *HASHING], 2, "--mode"),
    ("search: an empty query", lambda t: ["search", "  ", "--repo", "svc", *HASHING], 2, "the query is empty"),
    (
        "search: bge-small not installed",
        lambda t: ["search", "retry", "--repo", "svc", "--embedder", "bge-small"],
        2,
        "bge-small-en-v1.5, is not installed in",
    ),
    ("search: MiniLM not installed", lambda t: ["search", "retry", "--repo", "svc"], 2, "`goresolve model install`"),
    ("index: MiniLM not installed", lambda t: ["index", str(t), "--repo", "svc"], 2, "`goresolve model install`"),
    (
        "index: static needs MiniLM",
        lambda t: ["index", str(t), "--repo", "svc", "--embedder", "static"],
        2,
        "all-MiniLM-L6-v2 (the static embedder is distilled from it)",
    ),
    (
        "index: bge-small not installed",
        lambda t: ["index", str(t), "--repo", "svc", "--embedder", "bge-small"],
        2,
        "`goresolve model install --embedder bge-small`",
    ),
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
    # a value that reads like rich markup is printed as written
    ("audit verify: a path like markup", lambda t: ["audit", "verify", str(t / "[/x]")], 2, "[/x]: no such file"),
    ("audit verify: a path like a style", lambda t: ["audit", "verify", str(t / "[red]")], 2, "[red]: no such file"),
    # a file that is not what it should be is named, with what is wrong with it
    (
        "token mint: a binary key file",
        lambda t: ["token", "mint", "--subject", "a", "--server", "jira-read", "--key-file", str(_binary(t))],
        2,
        "blob: the key file is not UTF-8 text",
    ),
    ("runs: random bytes as the ledger", lambda t: ["runs"], 1, "ledger.sqlite: not a readable run ledger"),
    ("runs: a truncated ledger", lambda t: ["runs"], 1, "ledger.sqlite: not a readable run ledger"),
    ("runs: a directory as the ledger", lambda t: ["runs"], 1, "ledger.sqlite: not a readable run ledger"),
    ("trace: binary spans", lambda t: ["trace", "r-1"], 1, "spans.jsonl: not a spans file (UnicodeDecodeError"),
    ("trace: spans that are not objects", lambda t: ["trace", "r-1"], 1, "spans.jsonl: not a spans file"),
    ("trace: a span without its keys", lambda t: ["trace", "r-1"], 1, "spans.jsonl: not a spans file (KeyError"),
]

# what the data directory holds for a case above (keyed by its name)
STATE: dict[str, Callable[[Path], None]] = {
    "runs: random bytes as the ledger": lambda d: _put(d / "agent" / "ledger.sqlite", os.urandom(4096)),
    "runs: a truncated ledger": lambda d: _put(d / "agent" / "ledger.sqlite", b"SQLite format 3\x00" + bytes(84)),
    "runs: a directory as the ledger": lambda d: (d / "agent" / "ledger.sqlite").mkdir(parents=True),
    "trace: binary spans": lambda d: _put(d / "agent" / "runs" / "r-1" / "spans.jsonl", b"\xff\xfe\x00spans"),
    "trace: spans that are not objects": lambda d: _put(d / "agent" / "runs" / "r-1" / "spans.jsonl", b"[1, 2]\n"),
    "trace: a span without its keys": lambda d: _put(d / "agent" / "runs" / "r-1" / "spans.jsonl", b'{"name": "x"}\n'),
}


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _binary(tmp: Path) -> Path:
    _put(tmp / "blob", b"\xff\xfe\x00\x01" * 64)
    return tmp / "blob"


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
    monkeypatch.delenv("GORESOLVE_TOKEN_KEY", raising=False)
    monkeypatch.delenv("GORESOLVE_AGENT_STATE_DIR", raising=False)
    if name in STATE:
        STATE[name](tmp_path / "data")
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
    assert code == 70  # before, 1: what check-patch, audit verify and doctor each document as their own answer
    assert err.strip().splitlines() == [
        "error: unexpected RuntimeError: disk on fire — run again with --debug for the stack and report it"
    ]
    monkeypatch.setattr(sys, "argv", ["goresolve", "--debug", "policy", "check"])
    code, _out, err = run(["--debug", "policy", "check"], capsys)
    assert code == 70
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


def test_a_missing_cassette_is_refused_before_the_repository_is_registered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, the repository was registered and indexed (seconds) and then the run failed on a raw OSError."""
    missing = tmp_path / "nope.jsonl"
    code, out, err = run(
        ["resolve", "--ticket", "SVC-101", "--repo", str(tmp_path / "no-such-repo"), "--cassette", str(missing)],
        capsys,
    )
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == [f"error: cassette {missing}: no such file"]


def test_a_model_without_a_price_is_refused_before_the_repository_is_registered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the repository was registered and indexed and the servers started (about 16 s) first."""
    monkeypatch.setenv("GORESOLVE_AGENT_PROVIDER", "openai")
    monkeypatch.setenv("GORESOLVE_AGENT_MODEL", "fake-model-nobody-prices")
    monkeypatch.setenv("GORESOLVE_AGENT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("GORESOLVE_AGENT_API_KEY", "sk-test-1234567890")
    code, out, err = run(["resolve", "--ticket", "SVC-101", "--repo", str(tmp_path / "no-such-repo")], capsys)
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == [
        "error: model 'fake-model-nobody-prices' has no price in budgets.yaml and unpriced models are not allowed: "
        "add its price (budgets.yaml `prices`), or for a model you host, `allow_unpriced: true`"
    ]


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


@pytest.mark.parametrize(
    ("how", "install"),
    [
        (["--embedder", "bge-small"], "goresolve model install --embedder bge-small"),
        ([], "goresolve model install --embedder bge-small"),  # GORESOLVE_CODE_SEARCH_EMBEDDER selects it
    ],
    ids=["--embedder", "the setting"],
)
def test_a_search_with_an_embedder_whose_model_is_missing_refuses_before_downloading_anything(
    how: list[str],
    install: str,
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path / "svc"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.go").write_text("package pkg\n\n// Retry retries.\nfunc Retry() {}\n")
    code, _out, err = run(["index", str(repo), "--repo", "svc", *HASHING], capsys)
    assert code == 0, err  # an index exists: before, the search downloaded the model, then found no index for it
    if not how:
        monkeypatch.setenv("GORESOLVE_CODE_SEARCH_EMBEDDER", "bge-small")
    code, out, err = run(["search", "retry", "--repo", "svc", *how], capsys)
    models = data_dir / "models"
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [
        f"error: the embedding model of embedder bge-small, bge-small-en-v1.5, is not installed in {models}: "
        f"install it first with `{install}`"
    ]
    assert not models.exists()  # nothing was downloaded, not even into a staging directory


def test_a_model_directory_setting_is_named_in_the_install_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "my-models"
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_MODEL_CACHE_DIR", str(models))
    code, _out, err = run(["index", str(tmp_path), "--repo", "svc", "--embedder", "bge-small"], capsys)
    assert code == 2
    assert err.strip().endswith(f"`goresolve model install --embedder bge-small --dir {models}`")
    assert not models.exists()


def test_an_installed_model_passes_the_check_and_model_less_embedders_need_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from goresolve.models import missing_model_for

    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_MODEL_CACHE_DIR", str(INSTALLED_MODELS))  # what scripts/test.sh installs
    assert missing_model_for("minilm") is None
    assert missing_model_for() is None
    code, _out, err = run(["search", "retry", "--repo", "svc"], capsys)
    assert code == 1 and "no code index" in err  # past the model check, to the command's own
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_MODEL_CACHE_DIR", str(tmp_path / "none"))
    assert missing_model_for("minilm") is not None
    assert missing_model_for("hashing") is None
    assert missing_model_for("openai") is None


def test_a_span_named_like_markup_is_shown_as_written(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    run_dir = data_dir / "agent" / "runs" / "r-markup"
    run_dir.mkdir(parents=True)
    span = {"trace_id": "t", "span_id": "s", "parent_id": None, "name": "[/bold] tool \x1b]0;x\x07", "start_ns": 0}
    span |= {"end_ns": 1_000_000, "attributes": {"goresolve.outcome": "[red]pr", "goresolve.exit": "[/x]"}}
    (run_dir / "spans.jsonl").write_text(json.dumps(span) + "\n")
    code, out, err = run(["trace", "r-markup"], capsys)
    assert code == 0, err
    assert "[/bold] tool" in out and "[red]pr ([/x])" in out and "\x1b]0;" not in out


def test_a_ledger_that_cannot_be_opened_stops_a_run_in_one_line_naming_it(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk (SQLite: "database or disk is full") or a corrupt ledger: named before any model call."""
    import anyio

    from agent.cli import AgentSettings, CommandFailed, build_run

    ledger = data_dir / "agent" / "ledger.sqlite"
    ledger.mkdir(parents=True)  # cannot be opened, as a ledger on a full disk cannot be created
    cassette = _file(tmp_path, "session.jsonl", "")
    run_ = build_run(AgentSettings(state_dir=data_dir), POLICY_DIR, "sample-service", {}, cassette)
    with pytest.raises(CommandFailed) as failed:
        anyio.run(run_.start, "SVC-1")
    assert failed.value.message.startswith(f"{ledger}: cannot open the run ledger (")
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {failed.value.message}"

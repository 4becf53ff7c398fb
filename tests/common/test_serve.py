"""Running a server: stdout carries only JSON-RPC, --help lists every setting, start-up faults are one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from mcp.server.mcpserver import MCPServer
from typer.testing import CliRunner

from servers.code_search.minilm import default_cache_dir
from servers.code_search.settings import CodeSearchSettings
from servers.common.policy import Policies
from servers.common.serve import cli_for, help_epilog, server_name
from servers.common.settings import ServerSettings, settings_help
from servers.github_pr.settings import GitHubPrSettings
from servers.go_test_runner.settings import GoTestRunnerSettings
from servers.jira_read.settings import JiraReadSettings

SERVERS: dict[str, type[ServerSettings]] = {
    "jira_read": JiraReadSettings,
    "code_search": CodeSearchSettings,
    "go_test_runner": GoTestRunnerSettings,
    "github_pr": GitHubPrSettings,
}
MODELS = default_cache_dir()  # resolved before the per-test data dir: the installed model is reused

HANDSHAKE = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def _stdio_session(module: str, env: dict[str, str], timeout: float = 120) -> tuple[list[str], str]:
    """Start `python -m servers.<module>` with `env`, list its tools, close stdin; (stdout lines, stderr)."""
    with tempfile.TemporaryFile("w+") as errlog:  # a file, so a chatty log can never block the server
        proc = subprocess.Popen(
            [sys.executable, "-m", f"servers.{module}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env=env,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        lines: list[str] = []
        try:
            proc.stdin.write("".join(json.dumps(m) + "\n" for m in HANDSHAKE))
            proc.stdin.flush()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if '"id":2' in line.replace(" ", ""):
                    break
            proc.stdin.close()  # end of the session: the server exits
            lines += proc.stdout.read().splitlines(keepends=True)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            proc.stdout.close()
        errlog.seek(0)
        return lines, errlog.read()


@pytest.mark.parametrize("module", sorted(SERVERS))
def test_stdout_carries_only_json_rpc_with_default_settings(module: str, data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    env["GORESOLVE_DATA_DIR"] = str(data_dir)
    env["GORESOLVE_CODE_SEARCH_MODEL_CACHE_DIR"] = str(MODELS)
    env["PIP_NO_INDEX"] = "1"  # a missing model must not be fetched from a test
    lines, err = _stdio_session(module, env)
    assert lines, err
    parsed: list[dict[str, Any]] = []
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            pytest.fail(f"{module} wrote a non-JSON-RPC line to stdout: {line[:200]!r}")
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", line[:200]
        parsed.append(message)
    listed = [m for m in parsed if m.get("id") == 2]
    assert listed and listed[0]["result"]["tools"], err
    for line in err.splitlines():  # the log channel: JSON lines too, redacted
        if line.strip():
            assert isinstance(json.loads(line), dict), line[:200]


@pytest.mark.parametrize("module", sorted(SERVERS))
def test_help_lists_every_setting_with_its_env_name_default_and_the_http_path(module: str) -> None:
    cls = SERVERS[module]
    rows = settings_help(cls)
    epilog = help_epilog(cls)
    prefix = str(cls.model_config.get("env_prefix"))
    assert {env for env, _d, _t in rows} == {prefix + name.upper() for name in cls.model_fields}
    for env, default, _text in rows:
        assert f"{env}={default}" in epilog
    assert f"{prefix}PORT={cls.model_fields['port'].default}" in epilog
    assert "/mcp" in epilog
    secret_rows = [d for e, d, _t in rows if e.endswith(("TOKEN_KEY", "API_TOKEN"))]
    assert all(d == "(secret, unset)" for d in secret_rows)


def test_the_console_script_help_shows_the_settings() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "servers.jira_read", "--help"], capture_output=True, text=True, timeout=120, check=True
    )
    assert "GORESOLVE_JIRA_READ_BACKEND=local" in done.stdout
    assert "GORESOLVE_JIRA_READ_API_TOKEN=(secret, unset)" in done.stdout
    assert "http://<host>:<port>/mcp (default port 8101)" in done.stdout


def test_server_names_come_from_the_env_prefix() -> None:
    assert [server_name(c) for c in SERVERS.values()] == ["jira-read", "code-search", "go-test-runner", "github-pr"]


def _cli(build: Any) -> typer.Typer:
    return cli_for(JiraReadSettings, build)


def test_a_bad_policy_dir_ends_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(lambda s, p: None), ["--policy-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path / 'none' / 'access.yaml'}: required policy file is missing"
    ]


def test_a_builder_crash_ends_in_one_line_and_debug_adds_the_stack() -> None:
    def build(_settings: JiraReadSettings, _policies: Policies) -> MCPServer[Any]:
        raise RuntimeError("backend exploded")

    result = CliRunner().invoke(_cli(build), [])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: jira-read could not start: RuntimeError: backend exploded (run with --debug for the stack)"
    ]
    debug = CliRunner().invoke(_cli(build), ["--debug"])
    assert "Traceback (most recent call last)" in debug.output


def test_logging_is_configured_before_the_builder_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from servers.common.logging import get_logger

    def build(_settings: JiraReadSettings, _policies: Policies) -> MCPServer[Any]:
        get_logger("builder").warning("from the builder", token="ghp_" + "a" * 36)
        raise RuntimeError("stop here")

    with pytest.raises(SystemExit):
        _cli(build)(args=[], prog_name="jira-read-mcp")
    out = capsys.readouterr()
    assert out.out == ""  # stdout is the JSON-RPC channel
    logged = [json.loads(line) for line in out.err.splitlines() if line.startswith("{")]
    assert logged and logged[0]["event"] == "from the builder"
    assert logged[0]["token"] == "[REDACTED]"


@pytest.mark.parametrize(
    ("raised", "line", "code"),
    [
        (OSError(98, "Address already in use"), "error: jira-read: Address already in use", 2),
        (
            RuntimeError("event loop died"),
            "error: jira-read stopped: RuntimeError: event loop died (run with --debug for the stack)",
            1,
        ),
    ],
)
def test_a_failure_while_serving_is_one_line(
    raised: Exception, line: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import servers.common.serve

    def serve(_server: object, _settings: object) -> None:
        raise raised

    monkeypatch.setattr(servers.common.serve, "serve", serve)
    result = CliRunner().invoke(_cli(lambda s, p: object()), [])
    assert result.exit_code == code
    assert result.output.strip().splitlines() == [line]


def _occupied_port() -> tuple[socket.socket, int]:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken, taken.getsockname()[1]


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    return {**env, "GORESOLVE_DATA_DIR": str(tmp_path / "data"), **extra}


@pytest.mark.parametrize(
    ("argv", "extra", "line"),
    [
        (
            [sys.executable, "-m", "servers.jira_read", "--transport", "http"],
            {"GORESOLVE_JIRA_READ_TOKEN_KEY": "k" * 40},
            "error: jira-read: cannot listen on 127.0.0.1:{port}: Address already in use (--host, --port)",
        ),
        (
            [sys.executable, "-m", "goresolve.cli", "serve", "webhooks"],
            {"GORESOLVE_WEBHOOKS_GITHUB_SECRET": "s" * 32},
            "error: cannot listen on 127.0.0.1:{port}: Address already in use (--host, --port)",
        ),
    ],
)
def test_a_port_in_use_is_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], extra: dict[str, str], line: str
) -> None:
    """Before, uvicorn logged the failure as a JSON line and exited 3, where serve.py promises one line and 2."""
    taken, port = _occupied_port()
    with taken:
        done = subprocess.run(
            [*argv, "--port", str(port)], env=_clean_env(tmp_path, **extra), capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == line.format(port=port)

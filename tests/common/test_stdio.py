"""The stdio transport answers a line it cannot decode at once, and keeps serving.

Real servers in real processes: `python -m servers.<name>` with its local backend (jira-read for the
details, every server for the basics), one JSON line at a time, every answer awaited with a bound.
The bad lines carry a marker that must never come back.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.common.stdio import Refusal, decode
from tests.common.test_serve import HANDSHAKE, MODELS, SERVERS

MARKER = "PAYLOAD-MARKER-7f3a"  # in every bad line; echoed nowhere
ANSWER_S = 30  # a bound, not a latency budget: before the fix the answer never came
START_S = 120


class Session:
    """One server process over stdio: send a line, receive the next JSON line within a bound."""

    def __init__(self, proc: subprocess.Popen[str], errlog: IO[str]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc, self._stdin, self._errlog = proc, proc.stdin, errlog
        self.stderr = ""  # what the server logged, once closed
        self.lines: queue.Queue[str] = queue.Queue()
        self.raw: list[str] = []  # everything the server wrote on stdout
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.raw.append(line)
            self.lines.put(line)
        self.lines.put("")  # EOF

    def send(self, line: str) -> None:
        self._stdin.write(line + "\n")
        self._stdin.flush()

    def request(self, message: dict[str, Any]) -> None:
        self.send(json.dumps(message))

    def receive(self, timeout: float = ANSWER_S) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no answer within {timeout} s")
        assert line, "the server closed stdout"
        message = json.loads(line)
        assert isinstance(message, dict), line
        return message

    def close(self) -> int:
        """Close stdin (the end of the session), wait for the process to end; its exit code. Fills `stderr`."""
        self._stdin.close()
        code = self.proc.wait(timeout=60)
        self._errlog.seek(0)
        self.stderr = self._errlog.read()
        return code


@contextmanager
def served(argv: list[str], env: dict[str, str], handshake: bool = True) -> Iterator[Session]:
    """A started server, initialized unless `handshake` is false; killed after the block if still running."""
    with tempfile.TemporaryFile("w+") as errlog:  # a file, so a chatty log can never block the server
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, env=env, text=True)
        try:
            session = Session(proc, errlog)
            if handshake:
                initialize, initialized = HANDSHAKE[:2]
                session.request(initialize)
                assert session.receive(START_S)["id"] == initialize["id"]
                session.request(initialized)
            yield session
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def _server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    env.update(GORESOLVE_DATA_DIR=str(data_dir), GORESOLVE_CODE_SEARCH_MODEL_CACHE_DIR=str(MODELS), PIP_NO_INDEX="1")
    env.update(extra)
    return env


@pytest.fixture
def jira(tmp_path: Path, policy_dir: Path, data_dir: Path) -> Iterator[Session]:
    env = _server_env(
        data_dir,
        GORESOLVE_JIRA_READ_STATE_DIR=str(tmp_path / "state"),
        GORESOLVE_JIRA_READ_POLICY_DIR=str(policy_dir),
    )
    with served([sys.executable, "-m", "servers.jira_read"], env) as session:
        yield session


def _call(request_id: int, key: str) -> dict[str, Any]:
    params = {"name": "get_issue", "arguments": {"key": key}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _error(request_id: int | str | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


PARSE = (-32700, "Parse error")
INVALID = (-32600, "Invalid Request")
SURROGATE_CALL = json.dumps(_call(7, MARKER + "\ud800"))  # json.dumps writes the lone surrogate as \ud800


def _line(**fields: Any) -> str:
    """A JSON-RPC-looking line whose params carry the marker."""
    return json.dumps({"jsonrpc": "2.0", **fields, "params": {"m": MARKER}})


BAD_LINES = [
    pytest.param(f"{{not json {MARKER}", _error(None, *PARSE), id="invalid-json"),
    pytest.param(SURROGATE_CALL, _error(7, *INVALID), id="lone-surrogate-in-tools-call"),
    pytest.param(f"[{_line(id=5, method='ping')}]", _error(None, *INVALID), id="array"),
    pytest.param("42", _error(None, *INVALID), id="number"),
    pytest.param(_line(id="req-8"), _error("req-8", *INVALID), id="no-method"),
    pytest.param(_line(id=True, method="ping"), _error(None, *INVALID), id="boolean-id"),
]


@pytest.mark.parametrize(("line", "answer"), BAD_LINES)
def test_an_undecodable_line_is_answered_at_once_and_the_next_request_is_served(
    jira: Session, line: str, answer: dict[str, Any]
) -> None:
    session = jira
    session.send(line)
    assert session.receive() == answer
    session.request(_call(9, "SVC-1"))
    served_call = session.receive()
    assert served_call["id"] == 9 and served_call["result"]["structuredContent"]["key"] == "SVC-1"
    session.request(HANDSHAKE[2])  # tools/list
    assert session.receive()["result"]["tools"]
    assert session.close() == 0  # EOF still ends the server cleanly
    log = session.stderr
    assert "Traceback" not in log
    assert MARKER not in "".join(session.raw) and MARKER not in log
    refused = [json.loads(row) for row in log.splitlines() if '"stdio line refused"' in row]
    assert [(r["code"], r["id"], r["level"]) for r in refused] == [(answer["error"]["code"], answer["id"], "warning")]


@pytest.mark.parametrize("module", sorted(SERVERS))
def test_every_server_answers_an_undecodable_line(module: str, data_dir: Path) -> None:
    with served([sys.executable, "-m", f"servers.{module}"], _server_env(data_dir)) as session:
        session.send(SURROGATE_CALL)
        assert session.receive() == _error(7, *INVALID)
        session.request(HANDSHAKE[2])  # tools/list
        assert session.receive()["result"]["tools"]
        assert session.close() == 0
    assert "Traceback" not in session.stderr and MARKER not in session.stderr


def test_a_notification_the_sdk_refuses_is_not_answered(jira: Session) -> None:
    # JSON-RPC 2.0 §4.1: the server MUST NOT reply to a notification, even a bad one.
    cancelled = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"m": MARKER + "\ud800"}}
    jira.send(json.dumps(cancelled))
    jira.request({"jsonrpc": "2.0", "id": 3, "method": "ping"})
    assert jira.receive() == {"jsonrpc": "2.0", "id": 3, "result": {}}  # the very next line
    assert jira.close() == 0
    assert "a notification the SDK refuses" in jira.stderr and MARKER not in jira.stderr


def test_bad_lines_before_initialize_and_blank_lines_are_handled(policy_dir: Path, data_dir: Path) -> None:
    env = _server_env(data_dir, GORESOLVE_JIRA_READ_POLICY_DIR=str(policy_dir))
    with served([sys.executable, "-m", "servers.jira_read"], env, handshake=False) as session:
        session.send("")  # no message: nothing to answer
        session.send(MARKER)
        assert session.receive(START_S) == _error(None, *PARSE)
        session.request(HANDSHAKE[0])
        assert session.receive()["result"]["serverInfo"]["name"] == "jira-read"
        assert session.close() == 0
    assert "Traceback" not in session.stderr


# A server whose tool prints to stdout and starts a child that reads stdin: with fd 0 and fd 1
# diverted while serving, neither touches the JSON-RPC channel.
STRAY = textwrap.dedent(
    """
    import subprocess, sys
    import anyio
    from mcp.server.mcpserver import MCPServer
    from servers.common.logging import configure_logging
    from servers.common.stdio import run_stdio

    configure_logging(service="stray")
    server = MCPServer("stray")

    @server.tool()
    def shout() -> str:
        print("stray output", flush=True)
        return subprocess.run(["cat"], stdout=subprocess.PIPE, text=True, timeout=20, check=True).stdout

    anyio.run(run_stdio, server)
    """
)


def test_a_tool_s_stray_output_and_children_never_touch_the_wire(data_dir: Path) -> None:
    with served([sys.executable, "-c", STRAY], _server_env(data_dir)) as session:
        session.request({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "shout"}})
        session.request({"jsonrpc": "2.0", "id": 5, "method": "ping"})  # what a child reading fd 0 would eat
        answers = {m["id"]: m for m in (session.receive(), session.receive())}
        assert answers[4]["result"]["content"][0]["text"] == ""  # `cat` read the null device
        assert answers[5]["result"] == {}
        assert session.close() == 0
    assert "stray output" in session.stderr
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in session.raw)


@given(st.text(max_size=200))
def test_decoding_never_raises_and_every_answer_can_be_written(line: str) -> None:
    decoded = decode(line)
    if isinstance(decoded, Refusal) and decoded.reply is not None:
        written = json.loads(decoded.reply.model_dump_json(by_alias=True, exclude_unset=True))
        assert written["error"]["message"] in ("Parse error", "Invalid Request")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES.filter(lambda value: not isinstance(value, dict)))
def test_json_that_is_not_an_object_is_an_invalid_request_with_id_null(value: Any) -> None:
    decoded = decode(json.dumps(value))
    assert isinstance(decoded, Refusal) and decoded.reply is not None
    assert (decoded.reply.id, decoded.reply.error.code) == (None, -32600)


@pytest.mark.parametrize("request_id", [0, -1, 2**70, "abc", "", "\u00e9\U0001f600"])
def test_a_request_without_method_is_answered_with_its_own_id(request_id: int | str) -> None:
    decoded = decode(json.dumps({"jsonrpc": "2.0", "id": request_id}))
    assert isinstance(decoded, Refusal) and decoded.reply is not None
    assert (decoded.reply.id, decoded.reply.error.code) == (request_id, -32600)


@pytest.mark.parametrize(
    "line",
    [
        '{"jsonrpc": "2.0", "id": "\\ud800", "method": "ping"}',  # an id that cannot be written back
        '{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}',
        '{"jsonrpc": "2.0", "id": null, "method": "ping"}',
        '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',  # JSON-RPC 2.0 §7: no id, yet answered
    ],
)
def test_an_id_that_cannot_be_read_is_answered_with_null(line: str) -> None:
    decoded = decode(line)
    assert isinstance(decoded, Refusal) and decoded.reply is not None
    assert (decoded.reply.id, decoded.reply.error.code) == (None, -32600)


@pytest.mark.parametrize(
    "line",
    [
        '{"jsonrpc": "2.0", "id": 3, "result": "\\ud800"}',  # a response: never answered
        '{"jsonrpc": "2.0", "id": 3, "error": "not an object"}',
        '{"jsonrpc": "2.0", "method": "notifications/progress", "params": ["positional"]}',
    ],
)
def test_responses_and_notifications_are_never_answered(line: str) -> None:
    decoded = decode(line)
    assert isinstance(decoded, Refusal) and decoded.reply is None


def test_a_line_that_parses_reaches_the_sdk_unchanged() -> None:
    from mcp_types import JSONRPCRequest, jsonrpc_message_adapter

    line = json.dumps(_call(1, "SVC-1"))
    decoded = decode(line)
    assert isinstance(decoded, JSONRPCRequest)
    assert decoded == jsonrpc_message_adapter.validate_json(line, by_name=False)

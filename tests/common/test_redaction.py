"""No configured secret, bearer token or Authorization header reaches a log line or an error message."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr

from servers.common.app import Platform
from servers.common.errors import UpstreamFailure
from servers.common.logging import REDACTED, Redactor, configure_logging, get_logger
from servers.common.policy import Policies
from servers.common.settings import ServerSettings
from servers.common.tools import ToolSpec

SECRET = "s3cr3t-jira-token-value-0123456789"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXBhcnQtaGVyZQ"


@pytest.mark.parametrize(
    "text",
    [
        f"token={SECRET}",
        f"calling jira with {SECRET}",
        "Authorization: Bearer abcdefghijklmnop1234",
        "authorization=Basic dXNlcjpwYXNzd29yZA==",
        f"got {JWT} back",
        "ghp_" + "a" * 36,
        "github_pat_" + "b" * 40,
        "AKIA" + "C" * 16,
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
        "xoxb-1234567890-abcdef",
    ],
)
def test_redactor_removes_secret_shapes(text: str) -> None:
    out = Redactor([SECRET]).text(text)
    assert REDACTED in out
    for fragment in (SECRET, "abcdefghijklmnop1234", "dXNlcjpwYXNzd29yZA", JWT, "a" * 36, "b" * 40, "C" * 16, "MIIE"):
        assert fragment not in out


def test_ordinary_text_is_left_alone() -> None:
    text = "GET /v1/items/42 returned 500: item not found in cache (token bucket empty)"
    assert Redactor([SECRET]).text(text) == text


def _capture(secrets: list[str]) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(service="test", secrets=secrets, stream=stream)
    return stream


def test_structlog_and_stdlib_lines_are_redacted() -> None:
    stream = _capture([SECRET])
    get_logger("t").info("upstream said", body=f"bad credentials {SECRET}", headers={"Authorization": "Bearer x"})
    logging.getLogger("httpx").warning("HTTP Request with Authorization: Bearer %s", "zzzzzzzzzzzzzzzz")
    get_logger("t").error("nested", data={"items": [f"k={SECRET}"]})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    text = stream.getvalue()
    assert SECRET not in text
    assert "zzzzzzzzzzzzzzzz" not in text
    assert lines[0]["headers"]["Authorization"] == REDACTED


async def test_tool_error_message_sent_to_client_is_redacted(tmp_path: Path, policies: Policies) -> None:
    settings = ServerSettings(state_dir=tmp_path, token_key=SecretStr(SECRET))
    platform = Platform.create("redaction-test", settings, policies, instructions="test")
    stream = _capture([])  # after create(): capture what the server logs, with its secrets registered

    @platform.tool(ToolSpec.reader("jira:read", name="leaky", description="Fails with a secret in the message."))
    async def leaky() -> dict[str, Any]:
        raise UpstreamFailure(f"jira refused token {SECRET}", detail=f"Authorization: Basic {SECRET}")

    @platform.tool(ToolSpec.reader("jira:read", name="crashes", description="Crashes unexpectedly."))
    async def crashes() -> dict[str, Any]:
        raise RuntimeError(f"boom with {SECRET}")

    async with Client(platform.finish()) as client:
        leaky_result = await client.call_tool("leaky", {})
        with pytest.raises(Exception) as crash:
            await client.call_tool("crashes", {})
    assert leaky_result.is_error
    assert SECRET not in leaky_result.content[0].text
    assert REDACTED in leaky_result.content[0].text
    assert SECRET not in str(crash.value)
    assert "Traceback" not in str(crash.value)
    assert "internal error (trace " in str(crash.value)
    assert SECRET not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue(), "the crash is logged with its traceback"

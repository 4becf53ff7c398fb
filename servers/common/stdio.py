"""The stdio transport of every server: the SDK's, plus an answer to each line it cannot decode.

Why this exists: the mcp SDK's `stdio_server` validates each line with pydantic and hands a line
that fails to the session as an `Exception`, which the session only logs at debug level. A client
that sent such a line — not JSON at all, JSON pydantic's parser refuses (an unpaired surrogate
escape such as `\\ud800` in a tool argument), a request without `method`, a batch — gets no answer
and waits for its own timeout, while over streamable HTTP the same body is answered at once.

Here each line goes through `decode`, which uses the SDK's own validation: a line that passes
reaches the SDK's low-level server unchanged; one that does not is answered as JSON-RPC 2.0 §5.1
asks (-32700 `Parse error` with id null for a line that is not JSON; -32600 `Invalid Request`
carrying the request's id when one can be read, null otherwise), and logged as one redacted line
on stderr. Neither the answer nor the log line repeats the payload, which may hold a secret.

The rest is the SDK's pattern: memory streams between a reader task, the low-level server's `run`
and one writer task, so an answer from here and the server's own responses share a single writer
and never interleave on stdout. Like the SDK's transport, fd 0 and fd 1 are diverted while serving
(to the null device and to stderr), so a child process that inherits them reads EOF instead of the
client's messages, and a stray print lands in the log instead of the JSON-RPC stream.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from mcp_types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    RequestId,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

from servers.common.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Refusal:
    """A line not handed to the SDK: the answer to write (None when JSON-RPC forbids one) and, for the log, why."""

    reply: JSONRPCError | None
    reason: str


def decode(line: str) -> JSONRPCMessage | Refusal:
    """The message on `line`, validated exactly as the SDK's stdio transport does, or its refusal. Never raises."""
    try:
        message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as exc:
        unread = exc.errors(include_url=False, include_input=False)[0]["type"] == "json_invalid"
        return _refusal(line, unread)
    if isinstance(message, JSONRPCNotification) and "id" in _object(line):
        # pydantic drops an id that is not a string or an integer (null, true, 1.5) and reads the
        # request as a notification, which would never be answered either.
        return Refusal(_error(None, INVALID_REQUEST), "a request id that is not a string or an integer")
    return message


def _refusal(line: str, unread: bool) -> Refusal:
    """Why the SDK refused `line` (`unread`: its JSON parser did), and the answer JSON-RPC 2.0 asks for."""
    try:
        value = json.loads(line, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return Refusal(_error(None, PARSE_ERROR), "not JSON")
    if not isinstance(value, dict):
        # JSON-RPC would answer a non-empty batch with an array of errors, but MCP dropped batches
        # (2025-06-18) and the write stream carries one message per line: an array is one bad request.
        return Refusal(_error(None, INVALID_REQUEST), "not a JSON object")
    message = cast(dict[str, Any], value)
    # JSON-RPC 2.0 answers only requests, never a notification ("The Server MUST NOT reply to a
    # Notification", §4.1) nor a response (§5): a well-formed notification whose content the SDK
    # refuses (an unpaired surrogate in its params) or a malformed answer to one of the server's
    # own requests is only logged. An object that is not a well-formed Request object is no
    # notification, with or without an id: the spec answers `{"jsonrpc": "2.0", "method": 1,
    # "params": "bar"}` with -32600 and id null (§7), and so do we.
    if "method" not in message and ("result" in message or "error" in message):
        return Refusal(None, "a response the SDK refuses (not answered)")
    if _is_notification(message):
        return Refusal(None, "a notification the SDK refuses (not answered)")
    reason = (
        "JSON the SDK's parser refuses (an unpaired surrogate escape, or nesting too deep)"
        if unread
        else "not a JSON-RPC message the SDK accepts"
    )
    return Refusal(_error(_request_id(message.get("id")), INVALID_REQUEST), reason)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # the standard library would accept NaN and Infinity


def _object(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):  # what pydantic reads, this reads too, short of a 4300-digit number
        return {}
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _is_notification(message: dict[str, Any]) -> bool:
    return (
        message.get("jsonrpc") == "2.0"
        and isinstance(message.get("method"), str)
        and "id" not in message
        and isinstance(message.get("params", {}), dict | list)
    )


def _request_id(value: object) -> RequestId | None:
    """`value` when it can be written back as a JSON-RPC id: an integer, or a string UTF-8 can encode."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _encodes(value):
        return value
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return False
    return True


_MESSAGES = {PARSE_ERROR: "Parse error", INVALID_REQUEST: "Invalid Request"}


def _error(request_id: RequestId | None, code: int) -> JSONRPCError:
    # The spec's own short messages: nothing of the line, which may hold a secret.
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=_MESSAGES[code]))


async def run_stdio(server: MCPServer[Any]) -> None:
    """Serve `server` over this process's stdin and stdout until stdin closes.

    Raises:
        OSError: stdin or stdout could not be duplicated (e.g. a closed descriptor).
    """
    # MCPServer has no public way to run on streams of our own; the SDK's in-memory client reaches
    # its low-level server the same way.
    lowlevel = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    with _diverted(0, os.open(os.devnull, os.O_RDONLY)) as wire_in, _diverted(1, os.dup(2)) as wire_out:
        # closefd=False: see `_diverted`. Decoding as the SDK does: UTF-8, a bad byte replaced.
        stdin = anyio.wrap_file(open(wire_in, encoding="utf-8", errors="replace", closefd=False))  # noqa: SIM115
        stdout = anyio.wrap_file(open(wire_out, "w", encoding="utf-8", closefd=False))  # noqa: SIM115
        to_server, from_client = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        to_client, for_client = anyio.create_memory_object_stream[SessionMessage](0)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_read, stdin, to_server, to_client.clone())
            tasks.start_soon(_write, for_client, stdout)
            await lowlevel.run(from_client, to_client, lowlevel.create_initialization_options())


async def _read(
    lines: AsyncIterable[str],
    to_server: MemoryObjectSendStream[SessionMessage | Exception],
    to_client: MemoryObjectSendStream[SessionMessage],
) -> None:
    async with to_server, to_client:
        try:
            async for line in lines:
                if not line.strip():
                    continue  # an empty line is no message, so there is nothing to answer
                decoded = decode(line)
                if not isinstance(decoded, Refusal):
                    await to_server.send(SessionMessage(decoded))
                    continue
                reply = decoded.reply
                log.warning(
                    "stdio line refused",
                    reason=decoded.reason,
                    code=None if reply is None else reply.error.code,
                    id=None if reply is None else reply.id,
                    chars=len(line),
                )
                if reply is not None:
                    await to_client.send(SessionMessage(reply))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the server stopped reading: it has ended


async def _write(messages: MemoryObjectReceiveStream[SessionMessage], stdout: anyio.AsyncFile[str]) -> None:
    """The one writer of stdout: the server's messages and the refusals, one line each."""
    async with messages:
        async for message in messages:
            await stdout.write(message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n")
            await stdout.flush()


@contextmanager
def _diverted(fd: int, diversion: int) -> Generator[int]:
    """A private duplicate of `fd` (the wire) while `fd` itself points at `diversion`; restored on exit.

    The duplicate is never closed: a worker thread may still be blocked reading it when serving ends.
    """
    wire = os.dup(fd)  # not inheritable (PEP 446): no child process gets the wire
    os.dup2(diversion, fd)
    os.close(diversion)
    try:
        yield wire
    finally:
        os.dup2(wire, fd)

"""Models that ship with the package: scripted responses, and replay of a recorded session.

`ScriptedModel` takes a list of responses (or of callables, or one function of the request) and
counts usage from the request's size, so budget logic is exercised exactly as with a live model.
`Recorder` wraps a live model and writes a cassette (JSONL: request fingerprint, request, response);
`ReplayModel` plays it back and refuses the moment a request differs from the recording.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.llm.errors import CassetteMismatch, ScriptExhausted
from agent.llm.types import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    Message,
    ToolCall,
    response_from_json,
    response_to_json,
)
from agent.llm.usage import estimate_usage

Step = ChatResponse | Message | Callable[[ChatRequest], ChatResponse | Message]


def reply(content: str = "", *calls: tuple[str, dict[str, Any] | str]) -> Message:
    """An assistant message; each call is (tool name, arguments dict or raw JSON text)."""
    tool_calls = tuple(
        ToolCall(f"call_{i}", name, args if isinstance(args, str) else json.dumps(args))
        for i, (name, args) in enumerate(calls)
    )
    return Message("assistant", content, tool_calls)


class ScriptedModel:
    """Plays `script` in order (a list), or calls `script(request)` for every request (a function)."""

    def __init__(
        self, script: Sequence[Step] | Callable[[ChatRequest], ChatResponse | Message], name: str = "scripted"
    ) -> None:
        self._script = script
        self._name = name
        self.requests: list[ChatRequest] = []

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if callable(self._script):
            step: Step = self._script
        else:
            index = len(self.requests) - 1
            if index >= len(self._script):
                raise ScriptExhausted(f"{self._name}: script has {len(self._script)} responses, call {index + 1}")
            step = self._script[index]
        result = step(request) if callable(step) else step
        if isinstance(result, ChatResponse):
            return result
        finish = "tool_calls" if result.tool_calls else "stop"
        return ChatResponse(result, estimate_usage(request, result), self._name, finish)


class Recorder:
    """Wraps a model and appends every exchange to a cassette file."""

    def __init__(self, model: ChatModel, cassette: Path) -> None:
        self.inner = model
        self.cassette = cassette
        cassette.parent.mkdir(parents=True, exist_ok=True)

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self.inner.complete(request)
        entry = {
            "model": self.name,
            "key": request.fingerprint(self.name),
            "request": request.to_json(),
            "response": response_to_json(response),
        }
        with self.cassette.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        return response


class ReplayModel:
    """Plays a cassette back in order; refuses a request that differs from the recorded one."""

    def __init__(self, cassette: Path, name: str | None = None) -> None:
        lines = [json.loads(line) for line in cassette.read_text(encoding="utf-8").splitlines() if line.strip()]
        self._entries: list[dict[str, Any]] = lines
        self._name = name or (str(lines[0]["model"]) if lines else "replay")
        self._position = 0

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if self._position >= len(self._entries):
            raise CassetteMismatch(
                f"cassette has {len(self._entries)} exchanges; request {self._position + 1} is extra"
            )
        entry = self._entries[self._position]
        if request.fingerprint(self._name) != entry["key"]:
            why = _first_difference(entry["request"], json.loads(json.dumps(request.to_json())))
            raise CassetteMismatch(f"request {self._position + 1} differs from the recording ({why})")
        self._position += 1
        return response_from_json(entry["response"])


def _first_difference(recorded: dict[str, Any], actual: dict[str, Any]) -> str:
    for key in ("tools", "tool_choice", "max_tokens", "temperature"):
        if recorded.get(key) != actual.get(key):
            return f"{key} changed"
    rec, act = recorded.get("messages", []), actual.get("messages", [])
    for i, (a, b) in enumerate(zip(rec, act, strict=False)):
        if a != b:
            return f"message {i + 1} ({b.get('role')}) changed"
    return f"{len(act)} messages, recorded {len(rec)}"

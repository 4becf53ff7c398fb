"""Provider-neutral chat types: what the loop sends to a model and what comes back.

Tool-call arguments stay the raw JSON text the model produced, so the loop (not the provider)
decides what a malformed or truncated call is and answers the model with a correction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text, exactly as the model sent it


@dataclass(frozen=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role "tool": which call this answers


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    tools: tuple[ToolDef, ...] = ()
    max_tokens: int = 2048
    temperature: float = 0.0
    # "none": the tools are defined (a history with tool calls needs them, for Anthropic) but none may be called
    tool_choice: Literal["auto", "none"] = "auto"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.tool_choice == "auto":  # the default is left out, so requests keep the keys they were recorded under
            del data["tool_choice"]
        return data

    def fingerprint(self, model: str) -> str:
        """sha256 over model, messages, tools and parameters (the cache and cassette key)."""
        canonical = json.dumps({"model": model, **self.to_json()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def size_bytes(self) -> int:
        """UTF-8 size of everything sent: an upper bound on the prompt's tokens for byte-level BPE tokenizers."""
        return len(json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class ChatResponse:
    message: Message
    usage: Usage
    model: str
    finish_reason: str = "stop"  # stop | tool_calls | length | ...
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict[str, Any])


@runtime_checkable
class ChatModel(Protocol):
    """The one seam between the agent and any LLM."""

    @property
    def name(self) -> str: ...

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """One chat completion.

        Raises:
            LLMError: any provider failure (see agent.llm.errors).
        """
        ...


def message_from_json(data: dict[str, Any]) -> Message:
    calls = tuple(ToolCall(**c) for c in data.get("tool_calls") or ())
    return Message(data["role"], data.get("content") or "", calls, data.get("tool_call_id"))


def response_to_json(response: ChatResponse) -> dict[str, Any]:
    return asdict(response)


def response_from_json(data: dict[str, Any]) -> ChatResponse:
    return ChatResponse(
        message=message_from_json(data["message"]),
        usage=Usage(**data["usage"]),
        model=data["model"],
        finish_reason=data.get("finish_reason", "stop"),
        cached=bool(data.get("cached", False)),
        extra=dict(data.get("extra") or {}),
    )

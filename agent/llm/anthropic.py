"""The Anthropic Messages API over httpx (POST {base_url}/v1/messages, anthropic-version 2023-06-01)."""

from __future__ import annotations

import json
from typing import Any, cast

import httpx
from pydantic import SecretStr

from agent.llm._http import HttpChatModel, post_json
from agent.llm.errors import MalformedResponse
from agent.llm.live import check_live_allowed
from agent.llm.types import ChatRequest, ChatResponse, Message, ToolCall, Usage
from agent.llm.usage import checked_usage

API_VERSION = "2023-06-01"


def _tool_input(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except (ValueError, RecursionError):  # what the model sent was refused as a format error already
        return {}


def wire_messages(messages: tuple[Message, ...]) -> tuple[str, list[dict[str, Any]]]:
    """System text apart; tool results become user turns of tool_result blocks (merged when consecutive)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": _tool_input(c.arguments)}
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
            continue
        out.append({"role": m.role, "content": m.content})
    return system, out


class AnthropicModel(HttpChatModel):
    def __init__(
        self,
        model: str,
        base_url: str = "https://api.anthropic.com",
        api_key: SecretStr | None = None,
        *,
        timeout_s: float = 60.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(model, base_url, api_key, timeout_s=timeout_s, client=client)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        check_live_allowed("anthropic")
        system, messages = wire_messages(request.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
            ]
            if request.tool_choice == "none":
                body["tool_choice"] = {"type": "none"}
        headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
        if self._api_key is not None:
            headers["x-api-key"] = self._api_key.get_secret_value()
        data = await post_json(self._client, f"{self.base_url}/v1/messages", headers, body, self.timeout_s, self.model)
        return parse_response(data, self.model, request)


def parse_response(data: dict[str, Any], model: str, request: ChatRequest) -> ChatResponse:
    """`data`, the answer to `request`, as a response; its usage checked against the request
    (`agent.llm.usage.checked_usage`).

    Raises MalformedResponse when `data` is not a Messages API message."""
    try:
        if data.get("type") != "message":
            raise ValueError("type is not message")
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in data["content"]:
            if block["type"] == "text":
                texts.append(str(block["text"]))
            elif block["type"] == "tool_use":
                calls.append(ToolCall(str(block["id"]), str(block["name"]), json.dumps(block["input"])))
        message = Message("assistant", "".join(texts), tuple(calls))
        stop = str(data.get("stop_reason") or "end_turn")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        billed = _usage(data, Message("assistant", ""), model, request) if isinstance(data.get("usage"), dict) else None
        raise MalformedResponse(f"{model}: not a Messages API response ({type(exc).__name__})", billed=billed) from exc
    checked = _usage(data, message, model, request)
    return ChatResponse(
        message=message,
        usage=checked,
        model=str(data.get("model") or model),
        finish_reason={"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}.get(stop, stop),
    )


def _usage(data: dict[str, Any], message: Message, model: str, request: ChatRequest) -> Usage:
    """The usage `data` reports for `message`, the answer to `request`, checked against the request."""
    raw = data.get("usage")
    usage: dict[str, Any] = cast("dict[str, Any]", raw) if isinstance(raw, dict) else {}
    return checked_usage(
        request,
        message,
        provider="anthropic",
        model=model,
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        cached_tokens=usage.get("cache_read_input_tokens"),
        cached_apart=True,
    )

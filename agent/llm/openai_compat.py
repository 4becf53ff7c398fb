"""Any OpenAI-compatible chat-completions endpoint with tool calling (OpenAI, Azure via base URL, vLLM,
Ollama, llama.cpp server, a LiteLLM proxy). Wire format: POST {base_url}/chat/completions."""

from __future__ import annotations

import json
from typing import Any, cast

from agent.llm._http import HttpChatModel, post_json
from agent.llm.errors import MalformedResponse
from agent.llm.live import check_live_allowed
from agent.llm.types import ChatRequest, ChatResponse, Message, ToolCall, Usage
from agent.llm.usage import checked_usage


def _wire_message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    return out


class OpenAICompatModel(HttpChatModel):
    """Chat completions over httpx. `client` is injected so tests can point it at a local fake."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        check_live_allowed("openai-compatible")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(m) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
            if request.tool_choice == "none":
                body["tool_choice"] = "none"
        headers = {"content-type": "application/json"}
        if self._api_key is not None:
            headers["authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        data = await post_json(
            self._client, f"{self.base_url}/chat/completions", headers, body, self.timeout_s, self.model
        )
        return parse_response(data, self.model, request)


def parse_response(data: dict[str, Any], model: str, request: ChatRequest) -> ChatResponse:
    """`data`, the answer to `request`, as a response; its usage checked against the request
    (`agent.llm.usage.checked_usage`).

    Raises MalformedResponse when `data` is not a chat.completion with one choice."""
    try:
        choice = data["choices"][0]
        msg = choice["message"]
        calls = tuple(
            ToolCall(id=str(c["id"]), name=str(c["function"]["name"]), arguments=_arguments(c["function"]))
            for c in msg.get("tool_calls") or ()
        )
        message = Message("assistant", _content(msg.get("content")), calls)
        finish_reason = str(choice.get("finish_reason") or "stop")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        why = f"{model}: not a chat completion ({type(exc).__name__}: {str(exc)[:80]})"
        billed = _usage(data, Message("assistant", ""), model, request) if isinstance(data.get("usage"), dict) else None
        raise MalformedResponse(why, billed=billed) from exc
    return ChatResponse(message, _usage(data, message, model, request), str(data.get("model") or model), finish_reason)


def _usage(data: dict[str, Any], message: Message, model: str, request: ChatRequest) -> Usage:
    """The usage `data` reports for `message`, the answer to `request`, checked against the request."""
    usage = _field(data, "usage")
    return checked_usage(
        request,
        message,
        provider="openai-compatible",
        model=model,
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        cached_tokens=_field(usage, "prompt_tokens_details").get("cached_tokens"),
    )


def _content(value: object) -> str:
    """A message's text: a string, or the text parts of a list of content parts (OpenAI's other form)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts: list[str] = []
        for part in cast("list[object]", value):
            text = cast("dict[str, object]", part).get("text") if isinstance(part, dict) else None
            if not isinstance(text, str):
                break
            texts.append(text)
        else:
            return "".join(texts)
    raise TypeError("message content is neither text nor a list of text parts")


def _arguments(function: dict[str, Any]) -> str:
    """A tool call's arguments as JSON text: a string as sent, or an object some servers send in its place."""
    value = function.get("arguments")
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value)
    raise TypeError("tool call arguments are neither a JSON string nor an object")


def _field(data: dict[str, Any], name: str) -> dict[str, Any]:
    """An object-valued field; empty when absent or not an object (the usage check names what is missing)."""
    value = data.get(name)
    return cast("dict[str, Any]", value) if isinstance(value, dict) else {}

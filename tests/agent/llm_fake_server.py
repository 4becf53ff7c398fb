"""A local HTTP server speaking the OpenAI chat-completions and Anthropic Messages wire formats.

Each test queues answers (status, JSON body or raw text, headers, delay); every request is recorded
with its headers and decoded body so tests can check what the provider sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class FakeLLM:
    url: str
    answers: deque[Answer]
    requests: list[dict[str, Any]]
    responder: list[Callable[[dict[str, Any]], Answer]]  # when set, answers every request (queue unused)

    def queue(self, *answers: Answer) -> None:
        self.answers.extend(answers)


def openai_completion(
    content: str = "", calls: list[tuple[str, dict[str, Any]]] | None = None, **usage: int
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, (n, a) in enumerate(calls)
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {
            "prompt_tokens": usage.get("prompt", 100),
            "completion_tokens": usage.get("completion", 20),
            "total_tokens": usage.get("prompt", 100) + usage.get("completion", 20),
            "prompt_tokens_details": {"cached_tokens": usage.get("cached", 0)},
        },
    }


def anthropic_message(
    text: str = "", calls: list[tuple[str, dict[str, Any]]] | None = None, **usage: int
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": a} for i, (n, a) in enumerate(calls or [])]
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": content,
        "stop_reason": "tool_use" if calls else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage.get("input", 80),
            "output_tokens": usage.get("output", 15),
            "cache_read_input_tokens": usage.get("cached", 0),
            "cache_creation_input_tokens": 0,
        },
    }


@contextmanager
def fake_llm_server() -> Iterator[FakeLLM]:
    answers: deque[Answer] = deque()
    requests: list[dict[str, Any]] = []
    responder: list[Callable[[dict[str, Any]], Answer]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            requests.append(
                {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
            )
            if responder:
                answer = responder[0](body)
            else:
                answer = answers.popleft() if answers else Answer(500, {"error": {"message": "no answer queued"}})
            if answer.delay_s:
                time.sleep(answer.delay_s)
            payload = (answer.raw if answer.raw is not None else json.dumps(answer.body)).encode()
            try:
                self.send_response(answer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeLLM(f"http://127.0.0.1:{server.server_address[1]}", answers, requests, responder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

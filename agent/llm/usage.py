"""Token usage as a provider reports it, checked before anything is charged for it.

Every cap (per run, per day) adds up what providers say they used, so a figure is taken only when it could be
true of the request that was sent. A count that is missing, negative or not an integer (or a prompt of 0
tokens) is replaced by an estimate from the sizes of the request and the answer (about 4 bytes a token); a count
larger than the request could produce is cut to that bound: the prompt to the request's size in bytes (at least
one byte a token) plus room for the provider's own template, the completion to the request's max_tokens. Each
answer whose usage was corrected gives one log line, with the provider and the model, and the same notes on the
current span (the loop's model-call span).
"""

from __future__ import annotations

import structlog
from opentelemetry import trace

from agent.llm.types import ChatRequest, Message, Usage

log = structlog.get_logger("agent.llm")

TEMPLATE_TOKENS = 4096
"""Tokens a provider may add to a prompt beyond the request's own bytes: chat templates, the text describing
tools (Anthropic documents a few hundred for tool use)."""


def estimate_usage(request: ChatRequest, message: Message) -> Usage:
    """About 4 bytes per token, the usual figure for English and code under BPE tokenizers."""
    return Usage(input_tokens=estimate_input(request), output_tokens=estimate_output(message))


def estimate_input(request: ChatRequest) -> int:
    return max(1, request.size_bytes() // 4)


def estimate_output(message: Message) -> int:
    size = len(message.content.encode()) + sum(len(c.arguments) + len(c.name) for c in message.tool_calls)
    return max(1, size // 4)


def input_bound(request: ChatRequest) -> int:
    """The most prompt tokens `request` can be: one per byte sent, plus the provider's template."""
    return request.size_bytes() + TEMPLATE_TOKENS


def checked_usage(
    request: ChatRequest,
    message: Message,
    *,
    provider: str,
    model: str,
    input_tokens: object,
    output_tokens: object,
    cached_tokens: object = None,
    cached_apart: bool = False,
) -> Usage:
    """The usage to charge for `message`, the answer to `request`, from the provider's raw fields (None when a
    field was absent). `cached_apart`: the provider counts cache reads apart from `input_tokens` (Anthropic), so
    the prompt is their sum. Never raises: whatever the provider sent, the result is a usage that can be charged.
    """
    notes: list[str] = []
    reported_input, why_input = _count(input_tokens)
    reported_output, why_output = _count(output_tokens)
    cached, why_cached = (0, None) if cached_tokens is None else _count(cached_tokens)

    if reported_input == 0:  # every request has a prompt: a provider saying none counted none
        reported_input, why_input = None, "0"
    if reported_input is None:
        prompt = estimate_input(request)
        notes.append(f"input_tokens {why_input}: charged an estimate, {prompt}")
    else:
        prompt = reported_input + ((cached or 0) if cached_apart else 0)
    bound = input_bound(request)
    if prompt > bound:
        notes.append(f"input_tokens {_show(prompt)} > {bound}, the most the request could be: charged {bound}")
        prompt = bound
    if cached is None:
        notes.append(f"cached_tokens {why_cached}: taken as 0")
        cached = 0
    elif cached > prompt:
        notes.append(f"cached_tokens {_show(cached)} > input_tokens {prompt}: taken as {prompt}")
        cached = prompt

    if reported_output is None:
        completion = estimate_output(message)
        notes.append(f"output_tokens {why_output}: charged an estimate, {completion}")
    else:
        completion = reported_output
    if completion > request.max_tokens:
        notes.append(
            f"output_tokens {_show(completion)} > max_tokens {request.max_tokens}: charged {request.max_tokens}"
        )
        completion = request.max_tokens

    if notes:
        log.warning("provider usage corrected", provider=provider, model=model, corrections=notes)
        trace.get_current_span().set_attributes(
            {"goresolve.usage.corrected": True, "goresolve.usage.corrections": notes}
        )
    return Usage(prompt, completion, cached)


def _count(value: object) -> tuple[int | None, str | None]:
    """`value` as a token count, or None and why it is not one (absent, not an integer, negative)."""
    if value is None:
        return None, "missing"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"not an integer ({type(value).__name__})"
    if value < 0:
        return None, f"negative ({_show(value)})"
    return value, None


def _show(count: int) -> str:
    """A count for a log line: a provider can send a number of any length."""
    text = str(abs(count))
    shown = text if len(text) <= 15 else f"a {len(text)}-digit number"
    return f"-{shown}" if count < 0 else shown

"""A provider is an external API that can be wrong: a body the gateway cannot decode is a malformed response, the
usage it reports is charged only as far as the request could have produced it, and a Retry-After longer than the
retries can wait ends the call at once. Real HTTP to the fake provider server."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import anyio
import pytest
import stamina
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.llm import (
    ChatRequest,
    MalformedResponse,
    Message,
    ProviderError,
    RateLimited,
    Retrying,
    ToolDef,
    Usage,
)
from agent.llm._http import MAX_BODY_BYTES, MAX_DEPTH
from agent.llm.anthropic import AnthropicModel
from agent.llm.gateway import WAIT_MAX_S
from agent.llm.openai_compat import OpenAICompatModel
from agent.llm.usage import checked_usage, estimate_input, estimate_output, input_bound
from agent.telemetry import run_spans, tracer

from ..llm_fake_server import Answer, FakeLLM, anthropic_message, openai_completion

TOOL = ToolDef("view", "Show a file.", {"type": "object", "properties": {"path": {"type": "string"}}})
REQUEST = ChatRequest((Message("system", "be brief"), Message("user", "fix it")), (TOOL,), max_tokens=64)


def _openai(llm: FakeLLM) -> OpenAICompatModel:
    return OpenAICompatModel("gpt-4o-mini", llm.url)


def _nested(depth: int) -> str:
    """An OpenAI completion with a `depth`-deep array beside its fields (not in a tool argument)."""
    return json.dumps(openai_completion("ok"))[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"


# --- bodies that cannot be decoded ---


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (_nested(100_000), "nested deeper than"),  # past the interpreter's recursion limit while decoding
        (_nested(MAX_DEPTH + 1), "nested deeper than"),  # decodes, but deeper than anything may walk later
        ("[" + json.dumps(openai_completion("ok")) + "]", "not a JSON object"),
        ('"a string"', "not a JSON object"),
        ("\xff\xfe not utf-8", "not JSON"),
        ('{"choices": [' * 3, "not JSON"),
    ],
)
async def test_a_body_that_cannot_be_decoded_is_a_malformed_response(llm: FakeLLM, raw: str, why: str) -> None:
    llm.queue(Answer(200, raw=raw))
    with pytest.raises(MalformedResponse, match=why) as caught:
        await _openai(llm).complete(REQUEST)
    assert caught.value.message.startswith("gpt-4o-mini: ")
    assert len(caught.value.message) < 120  # a fixed phrase: nothing of the body comes back


async def test_a_body_that_its_content_encoding_does_not_describe_is_a_malformed_response(llm: FakeLLM) -> None:
    """Before, httpx's DecodingError escaped the client: no retry, no fallback, the run ended as an internal error."""
    llm.queue(Answer(200, raw=json.dumps(openai_completion("ok")), headers={"content-encoding": "gzip"}))
    with pytest.raises(MalformedResponse, match="does not decode as its Content-Encoding says"):
        await _openai(llm).complete(REQUEST)


@pytest.mark.parametrize("status", [301, 307])
async def test_a_redirect_is_not_followed_nor_read_as_an_answer(llm: FakeLLM, status: int) -> None:
    """Before, a 307 whose body was a completion was taken as the answer, and a 301 read as a garbled one."""
    location = {"location": "https://elsewhere.example/v1/chat/completions?token=abc"}
    llm.queue(Answer(status, openai_completion("ok"), headers=location))
    with pytest.raises(ProviderError) as caught:
        await _openai(llm).complete(REQUEST)
    assert caught.value.status == status and not isinstance(caught.value, MalformedResponse)
    assert caught.value.message == (
        f"gpt-4o-mini: HTTP {status}: redirected to elsewhere.example, not followed: set the base URL to where the "
        "provider answers"
    )
    assert len(llm.requests) == 1


async def test_a_body_nested_to_the_limit_is_read(llm: FakeLLM) -> None:
    llm.queue(Answer(200, raw=_nested(MAX_DEPTH - 1)))  # the array sits one level below the top
    assert (await _openai(llm).complete(REQUEST)).message.content == "ok"


async def test_a_body_larger_than_the_cap_is_not_read_whether_or_not_its_length_is_declared(llm: FakeLLM) -> None:
    padding = " " * (MAX_BODY_BYTES + 1)
    llm.queue(Answer(200, raw=json.dumps(openai_completion("ok"))[:-1] + ', "pad": "' + padding + '"}'))
    with pytest.raises(MalformedResponse, match=f"larger than {MAX_BODY_BYTES} bytes"):
        await _openai(llm).complete(REQUEST)


async def test_an_error_body_that_cannot_be_decoded_still_gives_one_provider_error(llm: FakeLLM) -> None:
    llm.queue(Answer(400, raw='{"error": ' + "[" * 100_000 + "]" * 100_000 + "}"))
    with pytest.raises(ProviderError, match="HTTP 400") as caught:
        await _openai(llm).complete(REQUEST)
    assert caught.value.status == 400 and not isinstance(caught.value, MalformedResponse)
    assert len(caught.value.message) < 250  # the provider's text, shortened


async def test_a_deep_body_is_retried_then_named_like_any_malformed_response(llm: FakeLLM) -> None:
    llm.queue(*[Answer(200, raw=_nested(100_000))] * 3)  # 3 attempts under testing
    with pytest.raises(MalformedResponse, match="nested deeper"):
        await Retrying(_openai(llm), attempts=3).complete(REQUEST)
    assert len(llm.requests) == 3


# --- usage ---


def _corrected(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "provider usage corrected"]


async def _complete_in_span(model: OpenAICompatModel | AnthropicModel) -> tuple[Usage, dict[str, Any], list[Any]]:
    """One call inside a model-call span as the loop opens it: the usage charged, the span's attributes and the
    log lines the call gave."""
    sink = run_spans()
    with structlog.testing.capture_logs() as logs, tracer().start_as_current_span("chat test") as span:
        response = await model.complete(REQUEST)
    spans = sink.collect(span.get_span_context().trace_id)
    return response.usage, spans[0]["attributes"], logs


def _openai_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    body = openai_completion("ok")
    if usage is None:
        del body["usage"]
    else:
        body["usage"] = usage
    return body


async def test_reported_usage_within_bounds_is_charged_as_reported_and_nothing_is_logged(llm: FakeLLM) -> None:
    llm.queue(Answer(body=openai_completion("ok", prompt=30, completion=5, cached=10)))
    usage, attributes, logs = await _complete_in_span(_openai(llm))
    assert usage == Usage(30, 5, 10)
    assert _corrected(logs) == [] and "goresolve.usage.corrected" not in attributes


@pytest.mark.parametrize(
    ("reported", "why"),
    [
        (None, "missing"),
        ({}, "missing"),
        ({"prompt_tokens": 0, "completion_tokens": -1}, "0"),  # a prompt of 0 tokens is none counted
        ("lots", "missing"),  # usage that is not an object is no usage
        ({"prompt_tokens": -2_000_000, "completion_tokens": -10}, "negative (-2000000)"),
        ({"prompt_tokens": "120", "completion_tokens": 1.5}, "not an integer (str)"),
        ({"prompt_tokens": True, "completion_tokens": None}, "not an integer (bool)"),
    ],
)
async def test_usage_that_is_missing_negative_or_not_an_integer_is_charged_an_estimate(
    llm: FakeLLM, reported: Any, why: str
) -> None:
    llm.queue(Answer(body=_openai_usage(reported)))
    usage, attributes, logs = await _complete_in_span(_openai(llm))
    estimate = Usage(estimate_input(REQUEST), estimate_output(Message("assistant", "ok")))
    assert usage == estimate and usage.input_tokens > 0 and usage.output_tokens > 0
    [line] = _corrected(logs)  # one line per answer, naming provider and model
    assert (line["provider"], line["model"], line["log_level"]) == ("openai-compatible", "gpt-4o-mini", "warning")
    assert any(why in note for note in line["corrections"])
    assert f"input_tokens {why}: charged an estimate, {estimate.input_tokens}" in line["corrections"]
    assert attributes["goresolve.usage.corrected"] is True
    assert attributes["goresolve.usage.corrections"] == line["corrections"]


async def test_usage_beyond_what_the_request_could_produce_is_cut_to_that_bound(llm: FakeLLM) -> None:
    llm.queue(Answer(body=openai_completion("ok", prompt=10**13, completion=10**6, cached=10**14)))
    usage, attributes, logs = await _complete_in_span(_openai(llm))
    bound = input_bound(REQUEST)
    assert usage == Usage(bound, REQUEST.max_tokens, bound)
    [line] = _corrected(logs)
    assert line["corrections"] == [
        f"input_tokens 10000000000000 > {bound}, the most the request could be: charged {bound}",
        f"cached_tokens 100000000000000 > input_tokens {bound}: taken as {bound}",
        f"output_tokens 1000000 > max_tokens {REQUEST.max_tokens}: charged {REQUEST.max_tokens}",
    ]
    assert attributes["goresolve.usage.corrections"] == line["corrections"]


async def test_anthropic_usage_is_checked_the_same_way(llm: FakeLLM) -> None:
    model = AnthropicModel("claude-haiku-4-5", llm.url)
    body = anthropic_message("ok")
    body["usage"] = {"input_tokens": -5, "output_tokens": 10**9, "cache_read_input_tokens": -1}
    llm.queue(Answer(body=body), Answer(body=anthropic_message("ok", input=40, output=5, cached=20)))
    usage, attributes, logs = await _complete_in_span(model)
    assert usage == Usage(estimate_input(REQUEST), REQUEST.max_tokens, 0)
    [line] = _corrected(logs)
    assert (line["provider"], line["model"]) == ("anthropic", "claude-haiku-4-5")
    assert line["corrections"] == [
        f"input_tokens negative (-5): charged an estimate, {estimate_input(REQUEST)}",
        "cached_tokens negative (-1): taken as 0",
        f"output_tokens 1000000000 > max_tokens {REQUEST.max_tokens}: charged {REQUEST.max_tokens}",
    ]
    assert attributes["goresolve.usage.corrections"] == line["corrections"]
    usage, _, logs = await _complete_in_span(model)
    assert usage == Usage(60, 5, 20) and _corrected(logs) == []  # cache reads are part of the prompt


_raw_count = st.one_of(
    st.none(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@given(_raw_count, _raw_count, _raw_count, st.booleans())
@settings(max_examples=300, deadline=None)
def test_whatever_a_provider_reports_the_usage_charged_is_non_negative_and_within_the_request(
    input_tokens: Any, output_tokens: Any, cached_tokens: Any, cached_apart: bool
) -> None:
    with structlog.testing.capture_logs():
        usage = checked_usage(
            REQUEST,
            Message("assistant", "ok"),
            provider="p",
            model="m",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached_tokens,
            cached_apart=cached_apart,
        )
    assert all(type(n) is int for n in (usage.input_tokens, usage.output_tokens, usage.cached_tokens))
    assert 0 < usage.input_tokens <= input_bound(REQUEST)
    assert 0 <= usage.output_tokens <= REQUEST.max_tokens
    assert 0 <= usage.cached_tokens <= usage.input_tokens


# --- Retry-After ---


async def _timed(model: Retrying) -> tuple[RateLimited, float]:
    """The rate limit `model` raises and how long it took, with stamina's real waits (not the tests' zero ones),
    bounded so a wait that is obeyed fails the test instead of hanging it."""
    start = time.monotonic()
    with stamina.set_testing(False), anyio.fail_after(10), pytest.raises(RateLimited) as caught:
        await model.complete(REQUEST)
    return caught.value, time.monotonic() - start


@pytest.mark.parametrize("kind", ["seconds", "http-date", "just-over-wait-max"])
async def test_a_retry_after_longer_than_the_retries_can_wait_fails_at_once_and_says_so(
    llm: FakeLLM, kind: str
) -> None:
    header = {
        "seconds": "3600",
        "http-date": email.utils.formatdate(time.time() + 3600, usegmt=True),
        "just-over-wait-max": str(int(WAIT_MAX_S) + 1),
    }[kind]
    llm.queue(Answer(429, {"error": {"message": "slow down"}}, headers={"retry-after": header}))
    error, took = await _timed(Retrying(_openai(llm), attempts=4))
    assert took < 1.0
    assert len(llm.requests) == 1
    assert error.retry_after_s is not None and error.retry_after_s > WAIT_MAX_S
    assert "rate-limited by the provider (429): Retry-After " in error.message
    if kind != "just-over-wait-max":  # the date is read against the clock a moment later
        assert abs(error.retry_after_s - 3600) < 5 and error.message.endswith(("3600 s", "3599 s", "3598 s"))


async def test_a_retry_after_past_the_retry_deadline_is_not_waited_for(llm: FakeLLM) -> None:
    llm.queue(Answer(429, {"error": {}}, headers={"retry-after": "10"}))  # under wait_max, past the deadline
    error, took = await _timed(Retrying(_openai(llm), attempts=4, deadline_s=5.0))
    assert took < 1.0 and len(llm.requests) == 1
    assert error.message.endswith("Retry-After 10 s")


async def test_a_short_retry_after_is_still_honoured(llm: FakeLLM) -> None:
    llm.queue(
        Answer(429, {"error": {}}, headers={"retry-after": "0"}),
        Answer(429, {"error": {}}),  # no Retry-After: the exponential backoff
        Answer(body=openai_completion("ok")),
    )
    with stamina.set_testing(True, attempts=3):
        response = await Retrying(_openai(llm), attempts=3).complete(REQUEST)
    assert response.message.content == "ok" and len(llm.requests) == 3


async def test_content_parts_and_object_arguments_are_read_and_other_shapes_are_malformed(llm: FakeLLM) -> None:
    """OpenAI's content-parts form, and tool-call arguments sent as an object, crashed the run (`.encode()` on a
    list: internal_error) or were refused three times as invalid JSON (str() of a dict). A content of another
    type is a malformed response, which the gateway retries and the loop hands off."""
    parts = openai_completion("")
    parts["choices"][0]["message"]["content"] = [{"type": "text", "text": "look at "}, {"type": "text", "text": "a.go"}]
    as_object = openai_completion(calls=[("view", {"path": "a.go"})])
    as_object["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = {"path": "a.go"}
    llm.answers += [Answer(200, parts), Answer(200, as_object)]
    model = OpenAICompatModel("gpt-4o", llm.url)
    assert (await model.complete(REQUEST)).message.content == "look at a.go"
    [call] = (await model.complete(REQUEST)).message.tool_calls
    assert json.loads(call.arguments) == {"path": "a.go"}
    for content in (12, [{"type": "image_url", "image_url": {"url": "x"}}], {"text": "x"}):
        odd = openai_completion("")
        odd["choices"][0]["message"]["content"] = content
        llm.answers.append(Answer(200, odd))
        with pytest.raises(MalformedResponse, match="content"):
            await model.complete(REQUEST)


def test_a_redirect_before_any_answer_is_the_set_up_s_to_fix() -> None:
    from agent.loop import _misconfiguration  # pyright: ignore[reportPrivateUsage]

    redirected = ProviderError("gpt-4o-mini: HTTP 301: redirected", status=301)
    assert (_misconfiguration(redirected, answered=False) or "").startswith("the endpoint, GORESOLVE_AGENT_BASE_URL")
    assert _misconfiguration(redirected, answered=True) is None  # after an answer: the moment's, a hand-off

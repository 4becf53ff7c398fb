"""The LLM gateway against a local server speaking the real OpenAI and Anthropic wire formats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stamina
from pydantic import SecretStr

from agent.llm import (
    Cached,
    CassetteMismatch,
    ChatRequest,
    Fallback,
    LiveModelRefused,
    MalformedResponse,
    Message,
    ModelConfig,
    PriceBook,
    ProviderError,
    RateLimited,
    Recorder,
    Redacting,
    ReplayModel,
    ResponseCache,
    RetryableError,
    Retrying,
    ScriptedModel,
    ToolDef,
    UnpricedModel,
    Usage,
    build_model,
    enable_live_requests,
    reply,
)
from agent.llm._http import retry_after_seconds
from agent.llm.anthropic import AnthropicModel
from agent.llm.errors import remember_secret
from agent.llm.gateway import _backoff  # pyright: ignore[reportPrivateUsage]
from agent.llm.openai_compat import OpenAICompatModel
from agent.policy import Budgets, Price

from .llm_fake_server import Answer, FakeLLM, anthropic_message, fake_llm_server, openai_completion

TOOL = ToolDef("view", "Show a file.", {"type": "object", "properties": {"path": {"type": "string"}}})
REQUEST = ChatRequest((Message("system", "be brief"), Message("user", "fix it")), (TOOL,), max_tokens=64)


@pytest.fixture
def live() -> Iterator[None]:
    enable_live_requests(True)
    with stamina.set_testing(True, attempts=3):
        yield
    enable_live_requests(None)  # type: ignore[arg-type]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with fake_llm_server() as server:
        yield server


async def test_openai_compatible_sends_tools_and_reads_tool_calls_and_usage(llm: FakeLLM, live: None) -> None:
    llm.queue(Answer(body=openai_completion(calls=[("view", {"path": "a.go"})], prompt=120, completion=9, cached=100)))
    model = OpenAICompatModel("gpt-4o-mini", llm.url + "/v1", SecretStr("sk-test"))
    response = await model.complete(REQUEST)
    sent = llm.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-test"
    assert sent["body"]["tools"] == [
        {"type": "function", "function": {"name": "view", "description": "Show a file.", "parameters": TOOL.parameters}}
    ]
    assert sent["body"]["messages"][0] == {"role": "system", "content": "be brief"}
    assert response.message.tool_calls[0].name == "view"
    assert json.loads(response.message.tool_calls[0].arguments) == {"path": "a.go"}
    assert response.usage == Usage(120, 9, 100)
    assert response.finish_reason == "tool_calls"


async def test_anthropic_sends_system_apart_and_tool_results_as_user_blocks(llm: FakeLLM, live: None) -> None:
    llm.queue(Answer(body=anthropic_message("done", calls=[("view", {"path": "b.go"})], input=50, output=7, cached=30)))
    model = AnthropicModel("claude-haiku-4-5", llm.url, SecretStr("ak-test"))
    history = (
        *REQUEST.messages,
        reply("", ("view", {"path": "a.go"})),
        Message("tool", "package a", tool_call_id="call_0"),
    )
    response = await model.complete(ChatRequest(history, (TOOL,)))
    body = llm.requests[0]["body"]
    assert llm.requests[0]["headers"]["x-api-key"] == "ak-test"
    assert llm.requests[0]["headers"]["anthropic-version"] == "2023-06-01"
    assert body["system"] == "be brief"
    assert body["tools"][0]["input_schema"] == TOOL.parameters
    assert body["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "call_0",
        "name": "view",
        "input": {"path": "a.go"},
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_0", "content": "package a"}],
    }
    assert response.message.content == "done"
    assert response.usage == Usage(80, 7, 30)  # input counts cache reads too; cached says how many


async def test_429_then_success_is_retried_honouring_retry_after(llm: FakeLLM, live: None) -> None:
    llm.queue(
        Answer(429, {"error": {"message": "slow down"}}, headers={"retry-after": "0"}),
        Answer(body=openai_completion("ok")),
    )
    model = Retrying(OpenAICompatModel("gpt-4o-mini", llm.url), attempts=3)
    response = await model.complete(REQUEST)
    assert response.message.content == "ok"
    assert len(llm.requests) == 2


def test_retry_after_overrides_the_backoff_and_other_errors_are_not_retried() -> None:
    assert _backoff(RateLimited("429", 7.5)) == 7.5
    assert _backoff(RateLimited("429")) is True
    assert _backoff(RetryableError("503")) is True
    assert _backoff(ProviderError("400")) is False
    assert _backoff(MalformedResponse("garbled")) is True
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None


async def test_5xx_and_timeouts_exhaust_the_retries_then_raise(llm: FakeLLM, live: None) -> None:
    # the late answer is well past the attempt's timeout; the timeout itself leaves a loaded machine time to answer
    llm.queue(Answer(503, {}), Answer(200, openai_completion("late"), delay_s=4.0), Answer(502, {}))
    model = Retrying(OpenAICompatModel("gpt-4o-mini", llm.url, timeout_s=1.0), attempts=3, timeout_s=1.0)
    with pytest.raises(RetryableError):
        await model.complete(REQUEST)
    assert len(llm.requests) == 3


async def test_a_4xx_is_not_retried_and_malformed_bodies_are_retried_then_named(llm: FakeLLM, live: None) -> None:
    llm.queue(Answer(400, {"error": {"message": "bad tools"}}))
    model = Retrying(OpenAICompatModel("gpt-4o-mini", llm.url), attempts=3)
    with pytest.raises(ProviderError, match="bad tools"):
        await model.complete(REQUEST)
    assert len(llm.requests) == 1
    llm.queue(Answer(200, raw="not json"), Answer(200, {"choices": []}), Answer(body=openai_completion("fine")))
    assert (await model.complete(REQUEST)).message.content == "fine"
    llm.queue(*[Answer(200, raw="{garbled")] * 3)
    with pytest.raises(MalformedResponse, match="not JSON"):
        await model.complete(REQUEST)
    assert len(llm.requests) == 7


def gpt4o_then_haiku(llm: FakeLLM) -> ModelConfig:
    """gpt-4o (two attempts), falling back to claude-haiku-4-5, both on the fake provider."""
    return ModelConfig(
        provider="openai",
        model="gpt-4o",
        base_url=llm.url,
        attempts=2,
        fallbacks=(ModelConfig(provider="anthropic", model="claude-haiku-4-5", base_url=llm.url),),
    )


async def test_fallback_moves_to_the_next_model_when_the_first_keeps_failing(llm: FakeLLM, live: None) -> None:
    llm.queue(*[Answer(500, {})] * 3, Answer(body=anthropic_message("from fallback")))  # 3 attempts under testing
    config = gpt4o_then_haiku(llm)
    model = build_model(config)
    assert isinstance(model, Redacting) and isinstance(model.inner, Fallback)
    response = await model.complete(REQUEST)
    assert response.message.content == "from fallback"
    assert [r["path"] for r in llm.requests] == [*["/chat/completions"] * 3, "/v1/messages"]


async def test_billed_replies_that_cannot_be_used_are_added_to_the_answer_across_retries_and_fallbacks(
    llm: FakeLLM, live: None
) -> None:
    """Each unusable reply that reports a usage is charged with the call: the answer's usage, or the failure's
    `billed` when no answer comes (before, every one of them was free to the run)."""
    garbage = openai_completion("", prompt=1000, completion=10)
    garbage["choices"] = []
    llm.queue(Answer(200, garbage), Answer(200, raw="not json"), Answer(body=openai_completion("fine", prompt=500)))
    model = Retrying(OpenAICompatModel("gpt-4o-mini", llm.url), attempts=3)
    answered = await model.complete(REQUEST)
    assert answered.message.content == "fine"
    assert (answered.usage.input_tokens, answered.usage.output_tokens) == (1500, 10 + 20)
    llm.queue(*[Answer(200, garbage)] * 3)
    with pytest.raises(MalformedResponse) as caught:
        await model.complete(REQUEST)
    assert caught.value.billed is not None and caught.value.billed.input_tokens == 3000

    llm.queue(*[Answer(200, garbage)] * 3, Answer(body=anthropic_message("from fallback")))
    config = gpt4o_then_haiku(llm)
    response = await build_model(config).complete(REQUEST)
    assert response.message.content == "from fallback" and response.usage.input_tokens >= 3000


# Credential shapes only: none of these is a real key.
AWS_KEY = "AKIAZ7Q4W2XK9LMN3PRT"
GITHUB_TOKEN = "ghp_" + "x7Yq2Lr9Vb4Nm8Kp3Wd6Tz1Hs5Jc0Fg2Aa7Q"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAvJ1kq3mZ\n-----END RSA PRIVATE KEY-----"
LEAKY = ChatRequest(
    (
        Message("system", "be brief"),
        Message("user", f"Deploys fail since the token {GITHUB_TOKEN} was rotated."),
        reply("", ("view", {"path": "config/keys.go"})),
        Message("tool", f'const key = "{AWS_KEY}"\nvar pem = `{PEM}`\n', tool_call_id="call_0"),
    ),
    (TOOL,),
)


async def test_no_credential_in_a_request_reaches_the_provider(llm: FakeLLM, live: None) -> None:
    """build_model's outermost wrapper: the ticket's pasted token and the code's key and private key are
    replaced on the wire; the model's own tool call goes back as it came; the response counts them."""
    llm.queue(Answer(body=openai_completion("done")))
    model = build_model(ModelConfig(provider="openai", model="gpt-4o", base_url=llm.url))
    response = await model.complete(LEAKY)
    wire = json.dumps(llm.requests[0]["body"])
    for secret in (AWS_KEY, GITHUB_TOKEN, "MIIEowIBAAKCAQEAvJ1kq3mZ", "BEGIN RSA PRIVATE KEY"):
        assert secret not in wire
    messages = llm.requests[0]["body"]["messages"]
    assert messages[1]["content"] == "Deploys fail since the token [credential removed: github_token] was rotated."
    assert messages[3]["content"] == (
        'const key = "[credential removed: aws_access_key]"\nvar pem = `[credential removed: private_key]`\n'
    )
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == '{"path": "config/keys.go"}'
    assert response.message.content == "done"
    assert response.extra["credentials_removed"] == 3


async def test_redaction_can_be_turned_off_for_a_model_you_host(llm: FakeLLM, live: None) -> None:
    llm.queue(Answer(body=openai_completion("done")))
    config = ModelConfig(provider="openai", model="qwen", base_url=llm.url, redact_credentials=False)
    response = await build_model(config).complete(LEAKY)
    assert AWS_KEY in json.dumps(llm.requests[0]["body"])
    assert "credentials_removed" not in response.extra


async def test_a_request_without_credentials_is_passed_on_unchanged() -> None:
    scripted = ScriptedModel([reply("ok")])
    response = await Redacting(scripted).complete(REQUEST)
    assert scripted.requests == [REQUEST] and scripted.requests[0] is REQUEST
    assert response.extra == {}


async def test_live_providers_refuse_under_tests_unless_enabled() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json=openai_completion("never")))
    model = OpenAICompatModel("gpt-4o", "http://127.0.0.1:9", client=httpx.AsyncClient(transport=transport))
    with pytest.raises(LiveModelRefused):
        await model.complete(REQUEST)
    with pytest.raises(LiveModelRefused):
        await AnthropicModel("claude-haiku-4-5", client=httpx.AsyncClient(transport=transport)).complete(REQUEST)


async def test_the_cache_answers_identical_requests_for_free_and_only_those(tmp_path: Path) -> None:
    scripted = ScriptedModel(lambda r: reply(f"answer {len(r.messages)}"))
    model = Cached(scripted, ResponseCache(tmp_path / "cache.sqlite"))
    first = await model.complete(REQUEST)
    again = await model.complete(REQUEST)
    other = await model.complete(ChatRequest(REQUEST.messages, (), max_tokens=64))
    assert (first.cached, again.cached, other.cached) == (False, True, False)
    assert again.message == first.message and again.usage == Usage()
    assert len(scripted.requests) == 2


async def test_the_cache_is_private_and_keeps_no_configured_key(tmp_path: Path) -> None:
    """Before, the cache was made 0755/0644 (the run records are 0700/0600) and kept an answer quoting the key as
    it came."""
    key = "cache-key-7f3a9c2e5d1b4a6f8e0c"
    remember_secret(key)
    where = tmp_path / "cache" / "responses.sqlite"
    model = Cached(ScriptedModel([reply(f"the key you sent is {key}", ("view", {"path": key}))]), ResponseCache(where))
    first = await model.complete(REQUEST)
    assert key in first.message.content  # the answer itself goes back to the caller as it came
    assert where.parent.stat().st_mode & 0o777 == 0o700 and where.stat().st_mode & 0o777 == 0o600
    assert key.encode() not in where.read_bytes()
    again = await model.complete(REQUEST)
    assert again.cached and again.message.content == "the key you sent is [secret removed]"
    assert json.loads(again.message.tool_calls[0].arguments) == {"path": "[secret removed]"}


def test_prices_come_from_policy_and_unpriced_models_are_refused() -> None:
    book = PriceBook(Budgets(prices={"gpt-4o": Price(input=2.5, output=10, cached_input=1.25)}))
    assert book.cost("gpt-4o", Usage(1_000_000, 100_000, 400_000)) == pytest.approx(0.6 * 2.5 + 0.4 * 1.25 + 1.0)
    assert book.cost("gpt-4o-2024-08-06", Usage(1_000_000, 0)) == pytest.approx(2.5)
    assert book.worst_case("gpt-4o", 1000, 500) == pytest.approx((1000 * 2.5 + 500 * 10) / 1e6)
    with pytest.raises(UnpricedModel):
        book.cost("llama3:8b", Usage(10, 10))
    assert PriceBook(Budgets(allow_unpriced=True)).cost("llama3:8b", Usage(10, 10)) == 0


async def test_replay_plays_a_recording_back_and_refuses_a_changed_request(tmp_path: Path) -> None:
    cassette = tmp_path / "session.jsonl"
    recorder = Recorder(
        ScriptedModel([reply("one"), reply("two", ("view", {"path": "x.go"}))], name="gpt-4o"), cassette
    )
    second = ChatRequest((*REQUEST.messages, Message("user", "and?")), REQUEST.tools)
    await recorder.complete(REQUEST)
    recorded = await recorder.complete(second)
    replay = ReplayModel(cassette)
    assert replay.name == "gpt-4o"
    assert (await replay.complete(REQUEST)).message.content == "one"
    assert await replay.complete(second) == recorded
    with pytest.raises(CassetteMismatch, match="extra"):
        await replay.complete(second)
    changed = ChatRequest((REQUEST.messages[0], Message("user", "fix it differently")), REQUEST.tools, max_tokens=64)
    with pytest.raises(CassetteMismatch, match="message 2"):
        await ReplayModel(cassette).complete(changed)


def test_the_agent_setting_turns_redaction_off_for_a_live_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.cli import AgentSettings

    monkeypatch.setenv("GORESOLVE_AGENT_PROVIDER", "openai")
    monkeypatch.setenv("GORESOLVE_AGENT_MODEL", "qwen")
    on = AgentSettings().live_model()
    assert on is not None and on.redact_credentials
    monkeypatch.setenv("GORESOLVE_AGENT_REDACT_CREDENTIALS", "false")
    off = AgentSettings().live_model()
    assert off is not None and not off.redact_credentials

"""Chains: fixed sequences of typed steps, pydantic model in, pydantic model out.

    chain = Chain("triage", [extract, queries, search, assemble])   # wiring checked here, once
    result = await chain.run(TicketText(...), ctx)

A step is anything with `name`, `kind`, `input_type`, `output_type` and `async run(data, ctx)` (the
`Step` Protocol), so a model step can be swapped for a fake in tests and the chain's logic is tested
without a model. Two kinds ship here:

- `ModelStep` asks the gateway for an answer in a JSON schema (the output model's, offered as the one
  tool `answer`), validates it with pydantic, and on invalid output sends the validation error back
  and asks again, at most `max_attempts` times (then `InvalidModelOutput`).
- `ToolStep` runs local code, which may call MCP tools through `ctx.call`.

Every chain and every step is an OpenTelemetry span; every model call is priced and recorded on the
ledger under the run's id, after the chain's own budget was checked against the call's worst case.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ValidationError

from agent.chains.errors import (
    ChainBudgetExceeded,
    ChainError,
    InvalidModelOutput,
    ModelUnavailable,
    ToolStepFailed,
)
from agent.ledger import Ledger
from agent.llm.errors import LLMError
from agent.llm.pricing import PriceBook
from agent.llm.types import ChatModel, ChatRequest, ChatResponse, Message, ToolDef, Usage
from agent.servers import ToolOutcome
from agent.telemetry import tracer

I = TypeVar("I", bound=BaseModel, contravariant=True)  # noqa: E741
O = TypeVar("O", bound=BaseModel, covariant=True)  # noqa: E741
In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

ToolCaller = Callable[[str, dict[str, Any]], Awaitable[ToolOutcome]]
ANSWER_TOOL = "answer"


@dataclass(frozen=True)
class ChainLimits:
    """What one chain may spend on model calls; each call's worst case is checked before it is made."""

    max_tokens: int = 60_000
    max_cost_usd: float = 0.25


@dataclass(frozen=True)
class StepRecord:
    chain: str
    step: str
    kind: str
    ok: bool
    duration_s: float


@dataclass
class ChainContext:
    """What steps share: the model, the MCP tools, pricing, the ledger, and what was spent so far."""

    model: ChatModel | None = None
    call_tool: ToolCaller | None = None
    prices: PriceBook | None = None
    ledger: Ledger | None = None
    run_id: str = "chain"
    tier: str | None = None
    limits: ChainLimits = field(default_factory=ChainLimits)
    on_spend: Callable[[Ledger], None] | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0
    steps: list[StepRecord] = field(default_factory=list[StepRecord])

    async def complete(self, step: str, request: ChatRequest) -> ChatResponse:
        """One model call for `step`: budget checked first, then a span, then priced onto the ledger.

        Raises:
            ChainBudgetExceeded: the call's worst case would pass `limits`.
            ModelUnavailable: no model is configured, or the gateway raised.
        """
        if self.model is None:
            raise ModelUnavailable(step, "this chain was given no model")
        model = self.model
        prompt = request.size_bytes()  # >= the prompt's tokens for byte-level BPE tokenizers
        worst_tokens = prompt + request.max_tokens
        if self.usage.total + worst_tokens > self.limits.max_tokens:
            raise ChainBudgetExceeded(
                step, f"token budget: {self.usage.total} used + up to {worst_tokens} next > {self.limits.max_tokens}"
            )
        if self.prices is not None:
            try:
                worst_cost = self.prices.worst_case(model.name, prompt, request.max_tokens)
            except LLMError as exc:
                raise ModelUnavailable(step, exc.message) from exc
            if self.cost_usd + worst_cost > self.limits.max_cost_usd:
                raise ChainBudgetExceeded(
                    step,
                    f"cost budget: ${self.cost_usd:.4f} spent + up to ${worst_cost:.4f} next "
                    f"> ${self.limits.max_cost_usd:.2f}",
                )
        with tracer().start_as_current_span(f"chat {model.name}") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": model.name,
                    "gen_ai.request.max_tokens": request.max_tokens,
                    "goresolve.purpose": f"chain step {step}",
                }
            )
            try:
                response = await model.complete(request)
            except LLMError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.message[:200]))
                raise ModelUnavailable(step, f"model unavailable: {exc.message}") from exc
            cost = self._price(response)
            span.set_attributes(
                {
                    "gen_ai.response.model": response.model,
                    "gen_ai.usage.input_tokens": response.usage.input_tokens,
                    "gen_ai.usage.output_tokens": response.usage.output_tokens,
                    "goresolve.cost_usd": cost,
                }
            )
        self.model_calls += 1
        self.usage += response.usage
        self.cost_usd += cost
        if self.ledger is not None:
            u = response.usage
            self.ledger.record_call(
                self.run_id, model.name, self.tier, (u.input_tokens, u.output_tokens, u.cached_tokens), cost
            )
            if self.on_spend is not None:
                self.on_spend(self.ledger)
        return response

    def _price(self, response: ChatResponse) -> float:
        if self.prices is None:
            return 0.0
        try:
            return self.prices.cost(response.model, response.usage)
        except LLMError:  # a dated or aliased response model: priced as the model asked for
            assert self.model is not None
            return self.prices.cost(self.model.name, response.usage)

    async def call(self, step: str, tool: str, args: Mapping[str, Any]) -> ToolOutcome:
        """One MCP tool call in a span. A tool error comes back as `ok=False` for the step to judge.

        Raises:
            ToolStepFailed: no tool caller, or the server refused the call by policy.
        """
        if self.call_tool is None:
            raise ToolStepFailed(step, f"this chain was given no MCP tools (needed: {tool})")
        with tracer().start_as_current_span(f"execute_tool {tool}") as span:
            span.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool})
            try:
                outcome = await self.call_tool(tool, dict(args))
            except PermissionError as exc:
                span.set_status(Status(StatusCode.ERROR, "refused by policy"))
                raise ToolStepFailed(step, f"{tool} refused by policy: {exc}") from None
            except KeyError:
                raise ToolStepFailed(step, f"no server offers the tool {tool}") from None
            if not outcome.ok:
                span.set_status(Status(StatusCode.ERROR, outcome.text[:200]))
        self.tool_calls += 1
        return outcome


@runtime_checkable
class Step(Protocol[I, O]):
    """One typed step of a chain."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...  # "model" | "tool" | "fake" ...

    @property
    def input_type(self) -> type[BaseModel]: ...

    @property
    def output_type(self) -> type[BaseModel]: ...

    async def run(self, data: I, ctx: ChainContext) -> O:
        """Raises: ChainError (a subclass naming this step) when the step cannot produce its output."""
        ...


class ToolStep(Generic[In, Out]):
    """Local code as a step; it may call MCP tools through `ctx.call`."""

    kind = "tool"

    def __init__(
        self,
        name: str,
        input_type: type[In],
        output_type: type[Out],
        fn: Callable[[In, ChainContext], Awaitable[Out]],
    ) -> None:
        self.name = name
        self.input_type = input_type
        self.output_type = output_type
        self._fn = fn

    async def run(self, data: In, ctx: ChainContext) -> Out:
        return await self._fn(data, ctx)


class ModelStep(Generic[In, Out]):
    """A model call whose answer must validate against `output_type` (its JSON schema is the `answer` tool)."""

    kind = "model"

    def __init__(
        self,
        name: str,
        input_type: type[In],
        output_type: type[Out],
        *,
        instructions: str,
        render: Callable[[In], str],
        max_attempts: int = 3,
        max_tokens: int = 1024,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.name = name
        self.input_type = input_type
        self.output_type = output_type
        self.instructions = instructions
        self.render = render
        self.max_attempts = max_attempts
        self.max_tokens = max_tokens
        self.tool = ToolDef(
            ANSWER_TOOL,
            f"Give your answer ({output_type.__name__}); call this exactly once.",
            output_type.model_json_schema(),
        )

    async def run(self, data: In, ctx: ChainContext) -> Out:
        system = (
            f"{self.instructions}\nAnswer only by calling the tool `{ANSWER_TOOL}` with arguments that match "
            "its schema."
        )
        messages: list[Message] = [Message("system", system), Message("user", self.render(data))]
        error = ""
        for _ in range(self.max_attempts):
            response = await ctx.complete(self.name, ChatRequest(tuple(messages), (self.tool,), self.max_tokens))
            message = response.message
            call = next((c for c in message.tool_calls if c.name == ANSWER_TOOL), None)
            raw = call.arguments if call is not None else _strip_fence(message.content)
            try:
                return self.output_type.model_validate_json(raw)
            except ValidationError as exc:
                error = describe(exc)
            correction = f"error: your answer does not match the schema ({error}). Call {ANSWER_TOOL} again, corrected."
            messages.append(message)
            if call is not None:
                messages.append(Message("tool", correction, tool_call_id=call.id))
            else:
                messages.append(Message("user", correction))
        raise InvalidModelOutput(
            self.name, f"no valid answer in {self.max_attempts} attempts; last: {error}", attempts=self.max_attempts
        )


def describe(exc: ValidationError, limit: int = 5) -> str:
    """A short, model-readable summary of a validation failure: `where: what` for the first few errors."""
    parts: list[str] = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "answer"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _strip_fence(text: str) -> str:
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return body.strip() or json.dumps(None)


class Chain(Generic[In, Out]):
    """A fixed sequence of steps whose types line up (checked when the chain is built)."""

    def __init__(
        self, name: str, input_type: type[In], output_type: type[Out], steps: Sequence[Step[Any, Any]]
    ) -> None:
        if not steps:
            raise ValueError(f"chain {name}: no steps")
        expected: type[BaseModel] = input_type
        for step in steps:
            if not issubclass(expected, step.input_type):
                raise TypeError(
                    f"chain {name}: step {step.name} takes {step.input_type.__name__}, but receives {expected.__name__}"
                )
            expected = step.output_type
        if not issubclass(expected, output_type):
            raise TypeError(f"chain {name}: ends with {expected.__name__}, not {output_type.__name__}")
        self.name = name
        self.input_type = input_type
        self.output_type = output_type
        self.steps = tuple(steps)

    async def run(self, data: In, ctx: ChainContext) -> Out:
        """Run every step in order, each in its span.

        Raises:
            ChainError: the first step that failed (the chain stops there; nothing later runs).
        """
        with tracer().start_as_current_span(f"chain {self.name}") as span:
            span.set_attributes({"goresolve.chain": self.name, "goresolve.chain.steps": len(self.steps)})
            value: BaseModel = data
            try:
                for step in self.steps:
                    value = await self._step(step, value, ctx)
            except ChainError as exc:
                span.set_status(Status(StatusCode.ERROR, f"{exc.kind}: {exc.step}"))
                raise
            finally:
                span.set_attributes(
                    {
                        "goresolve.cost_usd": ctx.cost_usd,
                        "gen_ai.usage.input_tokens": ctx.usage.input_tokens,
                        "gen_ai.usage.output_tokens": ctx.usage.output_tokens,
                    }
                )
        assert isinstance(value, self.output_type)
        return value

    async def _step(self, step: Step[Any, Any], value: BaseModel, ctx: ChainContext) -> BaseModel:
        started = time.monotonic()
        with tracer().start_as_current_span(f"chain.step {step.name}") as span:
            span.set_attributes(
                {"goresolve.chain": self.name, "goresolve.step": step.name, "goresolve.step.kind": step.kind}
            )
            ok = False
            try:
                out = await step.run(value, ctx)
                if not isinstance(out, step.output_type):
                    raise TypeError(f"step {step.name} returned {type(out).__name__}, not {step.output_type.__name__}")
                ok = True
                return out
            except ChainError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.reason[:200]))
                span.set_attribute("goresolve.error.kind", exc.kind)
                raise
            finally:
                ctx.steps.append(StepRecord(self.name, step.name, step.kind, ok, time.monotonic() - started))


class FakeStep(Generic[In, Out]):
    """A step that answers from a function, with no model: tests of a chain's logic use it for model steps."""

    kind = "fake"

    def __init__(
        self, name: str, input_type: type[In], output_type: type[Out], answer: Callable[[In], Out] | Out
    ) -> None:
        self.name = name
        self.input_type = input_type
        self.output_type = output_type
        self._answer = answer
        self.seen: list[In] = []

    async def run(self, data: In, ctx: ChainContext) -> Out:
        self.seen.append(data)
        answer = self._answer
        return answer if isinstance(answer, BaseModel) else answer(data)  # pyright: ignore[reportReturnType]

"""The LLM gateway: one `ChatModel` Protocol, HTTP providers chosen from a table, wrappers for
retries, fallback and caching, pricing from policy, and the scripted/replay models for tests."""

from agent.llm.errors import (
    CassetteMismatch,
    LiveModelRefused,
    LLMError,
    MalformedResponse,
    ProviderError,
    RateLimited,
    RetryableError,
    ScriptExhausted,
    SpendRefused,
    UnpricedModel,
)
from agent.llm.fake import Recorder, ReplayModel, ScriptedModel, reply
from agent.llm.gateway import Cached, Fallback, Redacting, ResponseCache, Retrying, SpendGuard, spend_guard
from agent.llm.live import enable_live_requests
from agent.llm.pricing import PriceBook
from agent.llm.registry import ModelConfig, build_model
from agent.llm.types import ChatModel, ChatRequest, ChatResponse, Message, ToolCall, ToolDef, Usage

__all__ = [
    "Cached",
    "CassetteMismatch",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "Fallback",
    "LLMError",
    "LiveModelRefused",
    "MalformedResponse",
    "Message",
    "ModelConfig",
    "PriceBook",
    "ProviderError",
    "RateLimited",
    "Recorder",
    "Redacting",
    "ReplayModel",
    "ResponseCache",
    "RetryableError",
    "Retrying",
    "ScriptExhausted",
    "ScriptedModel",
    "SpendGuard",
    "SpendRefused",
    "ToolCall",
    "ToolDef",
    "UnpricedModel",
    "Usage",
    "build_model",
    "enable_live_requests",
    "reply",
    "spend_guard",
]

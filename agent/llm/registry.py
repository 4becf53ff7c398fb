"""Providers chosen from a table by configuration; a provider's module is imported only when chosen."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agent.llm.gateway import Cached, Fallback, Redacting, ResponseCache, Retrying
from agent.llm.types import ChatModel

Provider = Literal["openai", "anthropic", "replay"]

PROVIDERS: dict[str, str] = {
    "openai": "agent.llm.openai_compat:OpenAICompatModel",
    "anthropic": "agent.llm.anthropic:AnthropicModel",
    "replay": "agent.llm.fake:ReplayModel",
}


class ModelConfig(BaseModel):
    """One model endpoint; `fallbacks` are tried in order when it fails after its retries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider
    model: str = Field(min_length=1, max_length=200)
    base_url: str | None = Field(default=None, description="e.g. http://localhost:11434/v1 for Ollama")
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0, le=600)
    attempts: int = Field(default=4, ge=1, le=10)
    cassette: Path | None = Field(default=None, description="replay: the recorded session")
    cache_path: Path | None = Field(default=None, description="opt-in SQLite response cache")
    redact_credentials: bool = Field(
        default=True,
        description="remove credential-shaped strings from every request (tickets, code, test output) before "
        "it leaves for the provider (the first config of a fallback chain decides for the chain); turn off only "
        "for a model you host yourself",
    )
    fallbacks: tuple[ModelConfig, ...] = ()


def _provider(config: ModelConfig) -> ChatModel:
    module_name, _, class_name = PROVIDERS[config.provider].partition(":")
    cls: Any = getattr(importlib.import_module(module_name), class_name)
    if config.provider == "replay":
        if config.cassette is None:
            raise ValueError("the replay provider needs a cassette")
        return cls(config.cassette, name=config.model)
    kwargs: dict[str, Any] = {"api_key": config.api_key, "timeout_s": config.timeout_s}
    if config.base_url:
        kwargs["base_url"] = config.base_url
    elif config.provider == "openai":
        kwargs["base_url"] = "https://api.openai.com/v1"
    model: ChatModel = cls(config.model, **kwargs)
    return Retrying(model, attempts=config.attempts, timeout_s=config.timeout_s)


def build_model(config: ModelConfig) -> ChatModel:
    """The configured model with retries, its fallback chain, the cache when asked for, and credential
    redaction around all of them (unless turned off), so neither a provider nor the cache sees a credential.

    Raises:
        ValueError: an incomplete configuration (replay without a cassette).
    """
    chain = [_provider(config), *(_provider(f) for f in config.fallbacks)]
    model: ChatModel = chain[0] if len(chain) == 1 else Fallback(chain)
    if config.cache_path is not None:
        model = Cached(model, ResponseCache(config.cache_path))
    if config.redact_credentials:
        model = Redacting(model)
    return model

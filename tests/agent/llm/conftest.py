"""The fake provider server (real HTTP, both wire formats) for the gateway's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.llm import enable_live_requests

from ..llm_fake_server import FakeLLM, fake_llm_server


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    enable_live_requests(True)
    with fake_llm_server() as server:
        yield server
    enable_live_requests(None)  # type: ignore[arg-type]

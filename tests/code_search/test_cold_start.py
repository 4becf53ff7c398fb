"""code-search answers tools/list at once: lancedb and the model load on first use or in the background."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest
from mcp import Client

from servers.code_search.embed import Embedder, HashingEmbedder, LazyEmbedder
from servers.code_search.server import build_server
from servers.code_search.settings import CodeSearchSettings
from servers.common.errors import UpstreamFailure
from servers.common.policy import Policies


def test_starting_the_server_imports_neither_lancedb_nor_onnxruntime() -> None:
    probe = (
        "import sys, servers.code_search.__main__\n"
        "print(sorted(m for m in ('lancedb', 'pyarrow', 'onnxruntime', 'onnx', 'tree_sitter') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


async def test_tools_list_answers_while_the_model_is_still_loading(tmp_path: Path, policies: Policies) -> None:
    release = threading.Event()
    loads: list[int] = []

    def slow_load() -> Embedder:
        loads.append(1)
        release.wait(timeout=60)
        return HashingEmbedder()

    embedder = LazyEmbedder(slow_load, "slow")
    settings = CodeSearchSettings(state_dir=tmp_path, embedder="hashing")
    server = build_server(settings, policies, embedder)
    embedder.start()
    try:
        with anyio.fail_after(2):
            async with Client(server) as client:
                tools = [t.name for t in (await client.list_tools()).tools]
        assert tools == ["get_symbol", "list_repos", "read_file", "search_code"]
    finally:
        release.set()
    assert await anyio.to_thread.run_sync(lambda: embedder.dim) == 256
    assert loads == [1]  # loaded once, by the background thread


def test_the_model_loads_once_on_first_use() -> None:
    loads: list[int] = []

    def load() -> Embedder:
        loads.append(1)
        return HashingEmbedder(dim=8)

    embedder = LazyEmbedder(load, "hashing")
    assert loads == []
    assert embedder.model_id == "hashing-8"
    assert embedder.embed(["a", "b"]).shape == (2, 8)
    assert loads == [1]


def test_a_failed_load_is_a_tool_error_and_is_retried() -> None:
    from servers.code_search.assets import ModelInstallError

    attempts: list[int] = []

    def load() -> Embedder:
        attempts.append(1)
        if len(attempts) == 1:
            raise ModelInstallError("pip could not reach the index")
        return HashingEmbedder(dim=8)

    embedder = LazyEmbedder(load, "minilm")
    with pytest.raises(UpstreamFailure, match="embedding model is not available: pip could not reach the index"):
        embedder.embed(["x"])
    assert embedder.dim == 8
    assert attempts == [1, 1]

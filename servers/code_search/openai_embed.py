"""An OpenAI-compatible `/embeddings` client (TEI, Ollama, vLLM, OpenAI, Voyage, ...) over httpx.

Batches inputs, retries 429 and 5xx a bounded number of times with backoff (honouring
Retry-After), and L2-normalizes the returned vectors. The service is a third party like the agent's
model: every credential in the code is replaced by `[credential removed: KIND]` before it is sent
(`credentials.redact_credentials`; a key's value says nothing about what the code does). The HTTP
client is injected so tests run against an in-process fake (httpx.MockTransport) and never reach the
network.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx
import numpy as np

from credentials import redact_credentials
from servers.code_search.embed import Vectors, normalize
from servers.common.errors import RateLimited, UpstreamFailure


class OpenAIEmbedder:
    """Embeddings from `POST {base_url}/embeddings` with body `{"model": ..., "input": [...]}`."""

    def __init__(
        self,
        base_url: str,
        model: str,
        dim: int,
        *,
        api_key: str | None = None,
        client: httpx.Client | None = None,
        batch_size: int = 64,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0))
        self._url = base_url.rstrip("/") + "/embeddings"
        self._headers = headers
        self._model = model
        self._dim = dim
        self._batch = batch_size
        self._retries = retries
        self._backoff = backoff

    @property
    def model_id(self) -> str:
        return f"openai-{self._model}-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed `texts`.

        Raises:
            RateLimited: still 429 after the bounded retries.
            UpstreamFailure: transport error, other HTTP error, or a malformed response body.
        """
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for start in range(0, len(texts), self._batch):
            batch = [redact_credentials(text) for text in texts[start : start + self._batch]]
            out[start : start + len(batch)] = self._post(batch)
        return normalize(out)

    def _post(self, batch: list[str]) -> Vectors:
        for attempt in range(self._retries + 1):
            try:
                resp = self._client.post(self._url, json={"model": self._model, "input": batch}, headers=self._headers)
            except httpx.HTTPError as exc:
                if attempt == self._retries:
                    raise UpstreamFailure("embedding service unreachable", detail=repr(exc)) from exc
                time.sleep(self._backoff * 2**attempt)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                retry_after = _retry_after(resp)
                if attempt == self._retries:
                    if resp.status_code == 429:
                        raise RateLimited("embedding service rate limit", retry_after=retry_after)
                    raise UpstreamFailure("embedding service error", status=resp.status_code, detail=resp.text[:500])
                time.sleep(min(retry_after or self._backoff * 2**attempt, 30.0))
                continue
            if resp.status_code != 200:
                raise UpstreamFailure(
                    "embedding service refused the request", status=resp.status_code, detail=resp.text[:500]
                )
            return self._parse(resp, len(batch))
        raise UpstreamFailure("embedding service error")  # unreachable: the loop returns or raises

    def _parse(self, resp: httpx.Response, n: int) -> Vectors:
        try:
            data = sorted(resp.json()["data"], key=lambda d: d["index"])
            vectors = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamFailure("malformed embedding response", detail=resp.text[:500]) from exc
        if vectors.shape != (n, self._dim):
            raise UpstreamFailure(f"embedding response has shape {vectors.shape}, expected ({n}, {self._dim})")
        return vectors


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None

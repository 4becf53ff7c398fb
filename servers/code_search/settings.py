"""code-search settings (env prefix GORESOLVE_CODE_SEARCH_), and the embedder/index they select."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from servers.common.errors import ConfigError
from servers.common.settings import ServerSettings

if TYPE_CHECKING:  # numpy, lancedb: only when a model or an index is opened (the CLI asks a warm process first)
    from servers.code_search.embed import Embedder
    from servers.code_search.index import CodeIndex


class CodeSearchSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_CODE_SEARCH_", extra="forbid", frozen=True)

    port: int = Field(default=8102, ge=1, le=65535)
    db_dir: Path | None = Field(
        default=None, description="LanceDB directory of the index; default <state_dir>/code-index."
    )
    index_uri: str | None = Field(
        default=None,
        description="LanceDB index on an object store (s3://bucket/prefix, s3+ddb://, gs://, az://) or file:///path, "
        "opened by LanceDB itself; wins over db_dir. Store credentials come from the store's own variables "
        "(AWS_ACCESS_KEY_ID, ...), never from the URI. The indexer's per-repo lock stays under db_dir.",
    )
    embedder: Literal["minilm", "bge-small", "static", "openai", "hashing"] = Field(
        default="minilm",
        description="minilm (offline default), bge-small (bge-small-en-v1.5: 0.6× MiniLM's indexing speed), static "
        "(word-piece vectors distilled from MiniLM: no transformer at run time), openai (any compatible endpoint) "
        "or hashing (tests).",
    )
    model_cache_dir: Path | None = Field(
        default=None,
        description="Embedding model weights and ONNX files (MiniLM, bge-small); default <data dir>/models "
        "(goresolve model install).",
    )
    openai_base_url: str | None = Field(default=None, description="e.g. http://tei:8080/v1 (OpenAI-compatible).")
    openai_model: str = "text-embedding-3-small"
    openai_dim: int = Field(default=1536, ge=8, le=8192)
    openai_api_key: SecretStr | None = None
    read_consistency_s: float = Field(default=0.5, ge=0, le=60, description="How stale a reader may be.")
    default_token_budget: int = Field(default=4000, ge=100, le=64_000)
    max_read_lines: int = Field(default=400, ge=10, le=5000)
    max_read_chars: int = Field(
        default=64_000,
        ge=1000,
        le=1_000_000,
        description="At most this many characters of a file per read_file call (whole lines; a longer line is cut "
        "and marked).",
    )

    @field_validator("index_uri")
    @classmethod
    def _store_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_index_uri(value)

    @property
    def index_dir(self) -> Path:
        """Where the index lives: `db_dir`, else `<state_dir>/code-index` (absolute either way)."""
        return (self.db_dir or self.state_dir / "code-index").expanduser().resolve()


INDEX_URI_SCHEMES = ("s3", "s3+ddb", "gs", "az", "file")


def check_index_uri(value: str) -> str:
    """An object-store URI LanceDB can open, with no credentials in it (the message never repeats the value).

    Raises:
        ValueError: not one of INDEX_URI_SCHEMES, no bucket (or a relative file path), or user info in it.
    """
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check (a bad one raises ValueError)
    except ValueError:
        raise ValueError("not a URI") from None
    if parts.scheme not in INDEX_URI_SCHEMES or any(c.isspace() for c in value):
        raise ValueError(f"must be a URI starting with one of {', '.join(s + '://' for s in INDEX_URI_SCHEMES)}")
    if "@" in parts.netloc:
        raise ValueError("must not carry credentials: give them as the store's own environment variables")
    if parts.fragment or (parts.query and parts.scheme != "s3+ddb"):
        raise ValueError("takes no query or fragment (only s3+ddb://bucket/path?ddbTableName=...)")
    if parts.scheme == "file":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise ValueError("a file URI names an absolute directory: file:///path/to/index")
    elif not parts.netloc:
        raise ValueError(f"names no bucket or container: {parts.scheme}://<bucket>/<prefix>")
    return value


def check_embedder(settings: CodeSearchSettings) -> None:
    """Refuse an embedder configuration that cannot work, before anything is loaded.

    Raises:
        ConfigError: `openai` without `openai_base_url`.
    """
    if settings.embedder == "openai" and not settings.openai_base_url:
        raise ConfigError("embedder 'openai' needs GORESOLVE_CODE_SEARCH_OPENAI_BASE_URL")


def open_embedder(settings: CodeSearchSettings) -> Embedder:
    """The embedder the settings select (the model is loaded here, once; MiniLM is installed if missing).

    Raises:
        ConfigError: `openai` without `openai_base_url`.
        ModelInstallError: the MiniLM weights are missing and could not be installed.
    """
    from servers.code_search.embed import make_embedder

    check_embedder(settings)
    if settings.embedder == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return make_embedder(
            "openai",
            base_url=settings.openai_base_url or "",
            model=settings.openai_model,
            dim=settings.openai_dim,
            api_key=key,
        )
    if settings.embedder in ("minilm", "bge-small", "static"):
        return make_embedder(settings.embedder, cache_dir=settings.model_cache_dir)
    return make_embedder("hashing")


def open_index(settings: CodeSearchSettings, embedder: Embedder, *, create: bool = False) -> CodeIndex:
    """The index for `embedder`'s vector space.

    Raises:
        UpstreamFailure: the index is missing (and `create` is false) or unreadable.
    """
    from servers.code_search.index import CodeIndex

    return CodeIndex(
        settings.index_dir,
        embedder.model_id,
        embedder.dim,
        uri=settings.index_uri,
        create=create,
        consistency=timedelta(seconds=settings.read_consistency_s),
    )

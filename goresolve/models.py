"""Whether the embedding model a command is about to use is installed, checked before anything runs.

`goresolve model install [--embedder bge-small]` is the one step that downloads a model. A command that
embeds (`index`, `search`, `resolve --repo PATH`) refuses up front when the model its embedder needs is
missing from the model directory, naming that step, instead of downloading on its own and failing later
(a search would fetch the model and then find no index for it).

    minilm, static   all-MiniLM-L6-v2's weights (static is distilled from them, on this machine)
    bge-small        bge-small-en-v1.5's ONNX graph and tokenizer
    openai, hashing  nothing local
"""

from __future__ import annotations

from pathlib import Path

from servers.code_search import assets
from servers.code_search.settings import CodeSearchSettings
from servers.common.errors import ConfigError
from servers.common.settings import load_settings

# embedder -> the pinned files it loads, what they are, and the `model install` option that installs them
_NEEDS: dict[str, tuple[assets.WheelPin, str, str]] = {
    "minilm": (assets.MINILM, "all-MiniLM-L6-v2", ""),
    "static": (assets.MINILM, "all-MiniLM-L6-v2 (the static embedder is distilled from it)", ""),
    "bge-small": (assets.BGE_SMALL, "bge-small-en-v1.5", " --embedder bge-small"),
}


def model_dir(settings: CodeSearchSettings) -> Path:
    """Where code-search looks for its models: the setting, else `<data dir>/models`."""
    return settings.model_cache_dir or assets.default_cache_dir()


def missing_model(settings: CodeSearchSettings) -> str | None:
    """One line saying that the model `settings.embedder` needs is not installed, and how to install it; None
    when it is installed or the embedder needs no local model."""
    needed = _NEEDS.get(settings.embedder)
    if needed is None:
        return None
    pin, what, option = needed
    models = model_dir(settings)
    if assets.installed_dir(models, pin) is not None:
        return None
    where = f" --dir {models}" if settings.model_cache_dir is not None else ""
    return (
        f"the embedding model of embedder {settings.embedder}, {what}, is not installed in {models}: install it "
        f"first with `goresolve model install{option}{where}`"
    )


def missing_model_for(embedder: str | None = None) -> str | None:
    """`missing_model` for code-search's settings with a command's `--embedder` (None: the setting's).

    Settings that do not load answer None: the command itself reports them, as it always has.
    """
    try:
        settings = load_settings(CodeSearchSettings, embedder=embedder)
    except ConfigError:
        return None
    return missing_model(settings)

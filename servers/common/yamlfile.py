"""The servers' face of the strict YAML loader (`yamlfiles`): its refusals as a `ConfigError`.

Every refusal is a `YamlFileError` (a `ConfigError`) with one line: `<file>: <where>: <reason>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yamlfiles
from servers.common.errors import ConfigError
from yamlfiles import MAX_DEPTH, DuplicateKeyError, NestingTooDeep, describe, safe_load

__all__ = [
    "MAX_DEPTH",
    "DuplicateKeyError",
    "NestingTooDeep",
    "YamlFileError",
    "describe",
    "load_yaml_file",
    "safe_load",
]


class YamlFileError(ConfigError):
    """A YAML file that cannot be used; `where` is "line N" or "(file)", `reason` what is wrong."""

    def __init__(self, path: Path, where: str, reason: str) -> None:
        super().__init__(yamlfiles.YamlFileError(path, where, reason).message)
        self.path = path
        self.where = where
        self.reason = reason


def load_yaml_file(path: Path) -> Any:
    """Read and parse one YAML file (an empty file is None).

    Raises:
        YamlFileError: a directory, unreadable, not UTF-8 text, invalid YAML, a repeated key, or
            nesting too deep; the one-line message names the file (and the line when known).
    """
    try:
        return yamlfiles.load_yaml_file(path)
    except yamlfiles.YamlFileError as exc:
        raise YamlFileError(exc.path, exc.where, exc.reason) from None

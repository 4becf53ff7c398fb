"""Typed configuration of the chains, read at the edge (environment variables or arguments).

GORESOLVE_SCAFFOLD_REGISTRY_DIR   the schema registry: a directory of .proto files
GORESOLVE_SCAFFOLD_TOOLS_DIR      where the pinned protoc-gen-go is installed (default: <data dir>/tools)
GORESOLVE_SCAFFOLD_GO_BINARY      the go command (default: go)
GORESOLVE_SCAFFOLD_TIMEOUT_S      per protoc/go call (default: 300)
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.chains.registry import ProtoDirRegistry
from agent.chains.toolchain import GoToolchain


class ScaffoldSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_SCAFFOLD_", extra="ignore")

    registry_dir: Path = Field(description="Directory of .proto files (the schema registry).")
    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("goresolve", appauthor=False),
        validation_alias=AliasChoices("GORESOLVE_DATA_DIR", "GORESOLVE_SCAFFOLD_DATA_DIR"),
        description="goresolve's data directory (the shared GORESOLVE_DATA_DIR).",
    )
    tools_dir: Path | None = Field(default=None, description="Where protoc-gen-go is installed (<data dir>/tools).")
    go_binary: str = "go"
    timeout_s: float = Field(default=300, gt=0, le=3600)

    def toolchain(self) -> GoToolchain:
        return GoToolchain(self.tools_dir or self.data_dir / "tools", self.go_binary, self.timeout_s)

    def registry(self) -> ProtoDirRegistry:
        return ProtoDirRegistry(self.registry_dir, self.toolchain())

"""Every way a chain fails, as one tree. Each error names the step it came from and turns into a
plain dict (`to_dict()`) for a run record or a CLI's one-line message.

ChainError                   a chain could not produce its output
 ├── InvalidModelOutput      a model step's answer failed validation on every allowed attempt
 ├── ModelUnavailable        the gateway raised (provider down, retries exhausted, no price)
 ├── ChainBudgetExceeded     the next model call could pass the chain's token or cost cap (checked before it)
 ├── ToolStepFailed          an MCP tool answered with an error, was refused by policy, or is not offered
 ├── UnknownMessage          a message type is not in the schema registry (names every missing one)
 ├── RegistryError           the schema registry could not be compiled (protoc's diagnostics)
 ├── ToolchainError          protoc, protoc-gen-go or go is missing or failed
 └── BuildFailed             check_build found diagnostics in generated code
"""

from __future__ import annotations

from typing import Any


class ChainError(Exception):
    kind = "chain_error"

    def __init__(self, step: str, reason: str, **details: Any) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "reason": self.reason, **self.details}


class InvalidModelOutput(ChainError):
    kind = "invalid_model_output"


class ModelUnavailable(ChainError):
    kind = "model_unavailable"


class ChainBudgetExceeded(ChainError):
    kind = "budget_exceeded"


class ToolStepFailed(ChainError):
    kind = "tool_failed"


class UnknownMessage(ChainError):
    kind = "unknown_message"

    def __init__(self, step: str, missing: list[str], suggestions: dict[str, list[str]]) -> None:
        hints = "".join(f" ({name}: did you mean {', '.join(found)}?)" for name, found in suggestions.items() if found)
        super().__init__(
            step,
            f"unknown message type{'s' if len(missing) > 1 else ''} {', '.join(missing)} in the schema registry{hints}",
            missing=missing,
            suggestions=suggestions,
        )
        self.missing = missing


class RegistryError(ChainError):
    kind = "registry_error"


class ToolchainError(ChainError):
    kind = "toolchain_error"


class BuildFailed(ChainError):
    kind = "build_failed"

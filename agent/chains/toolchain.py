"""The scaffold chain's tools, the only agent module that starts processes: protoc (from grpcio-tools),
protoc-gen-go (installed once, pinned, through the Go module proxy) and the go command.

None of them runs code from a repository: protoc reads .proto files, protoc-gen-go writes Go source,
and `go mod init/get/tidy` only resolve modules. Every call has a timeout and a scrubbed environment.

    tools = GoToolchain(tools_dir)
    tools.protoc(["-Iprotos", "--descriptor_set_out=out.pb", "--include_imports", "a.proto"], cwd=root)
    plugin = tools.protoc_gen_go()          # go install google.golang.org/protobuf/cmd/protoc-gen-go@PINNED
    tools.go(["mod", "init", "example.com/svc"], cwd=out)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agent.chains.errors import ToolchainError

# protoc-gen-go and the runtime its code needs (google.golang.org/protobuf) move together: one pin for both
PROTOBUF_GO_VERSION = "v1.36.11"
_KEEP_ENV = ("HOME", "GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GONOSUMDB", "GOPRIVATE", "GOFLAGS", "SSL_CERT_FILE")


@dataclass(frozen=True)
class Completed:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class GoToolchain:
    tools_dir: Path
    go_binary: str = "go"
    timeout_s: float = 300.0
    protobuf_go_version: str = PROTOBUF_GO_VERSION

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        env |= {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GOTOOLCHAIN": "local", "GOTELEMETRY": "off"}
        env |= {"LANG": "C.UTF-8", "GOFLAGS": "-mod=mod"}
        return env | (extra or {})

    def _run(self, step: str, argv: list[str], cwd: Path, env: dict[str, str]) -> Completed:
        try:
            done = subprocess.run(
                argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except FileNotFoundError:
            raise ToolchainError(step, f"{Path(argv[0]).name} is not installed") from None
        except subprocess.TimeoutExpired:
            raise ToolchainError(step, f"{' '.join(argv[:3])} did not finish within {self.timeout_s:g}s") from None
        return Completed(done.returncode, done.stdout, done.stderr)

    def protoc(self, args: list[str], *, cwd: Path, step: str = "registry") -> Completed:
        """protoc from grpcio-tools (`python -m grpc_tools.protoc` adds the well-known types' include path)."""
        return self._run(step, [sys.executable, "-m", "grpc_tools.protoc", *args], cwd, self._env())

    def go(self, args: list[str], *, cwd: Path, step: str = "layout") -> Completed:
        """The go command, for module work only (init, get, tidy).

        Raises:
            ToolchainError: go is missing, failed, or timed out.
        """
        go = shutil.which(self.go_binary)
        if go is None:
            raise ToolchainError(step, f"the go command ({self.go_binary}) is not on PATH")
        done = self._run(step, [go, *args], cwd, self._env())
        if done.exit_code != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()][-3:]
            raise ToolchainError(step, f"go {' '.join(args[:2])} failed: {'; '.join(lines)[:400]}")
        return done

    def protoc_gen_go(self, step: str = "models") -> Path:
        """The pinned protoc-gen-go, installed into `tools_dir` on first use.

        Raises:
            ToolchainError: go is missing or the install failed (no network to the module proxy, say).
        """
        target = self.tools_dir / f"protoc-gen-go@{self.protobuf_go_version}"
        binary = target / "protoc-gen-go"
        if binary.is_file():
            return binary
        go = shutil.which(self.go_binary)
        if go is None:
            raise ToolchainError(step, f"the go command ({self.go_binary}) is not on PATH")
        target.mkdir(parents=True, exist_ok=True)
        module = f"google.golang.org/protobuf/cmd/protoc-gen-go@{self.protobuf_go_version}"
        done = self._run(step, [go, "install", module], target, self._env({"GOBIN": str(target)}))
        if done.exit_code != 0 or not binary.is_file():
            lines = [line for line in done.stderr.splitlines() if line.strip()][-3:]
            raise ToolchainError(step, f"go install {module} failed: {'; '.join(lines)[:400]}")
        return binary

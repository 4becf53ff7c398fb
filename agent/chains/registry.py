"""Schema registries: where the scaffold chain looks message types up. Nothing here parses a .proto
file: the default registry compiles its directory with a real protoc into a FileDescriptorSet and
reads that with the protobuf runtime; another registry (gRPC server reflection, say) is one class.

    registry = ProtoDirRegistry(Path("schemas"), toolchain)
    found = registry.lookup(["shop.v1.Order"])     # UnknownMessage names every name it lacks
"""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError
from pydantic import BaseModel

from agent.chains.errors import RegistryError, UnknownMessage
from agent.chains.toolchain import GoToolchain

_TYPE_NAMES = {v: k.removeprefix("TYPE_").lower() for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()}


class FieldInfo(BaseModel):
    name: str
    type: str  # int64, string, message, enum, ...
    type_name: str | None = None  # for message and enum fields: the full name
    repeated: bool = False


class MessageInfo(BaseModel):
    full_name: str
    package: str  # the proto package of its file ("" for none)
    file: str
    fields: list[FieldInfo]


class Resolved(BaseModel):
    """The requested messages and every registry file needed to generate them (imports first)."""

    messages: list[MessageInfo]
    files: list[str]
    source_root: str | None = None  # a directory protoc can generate from; None: descriptors only


class SchemaRegistry(Protocol):
    def lookup(self, names: Sequence[str]) -> Resolved:
        """Raises: UnknownMessage (naming every missing type), RegistryError."""
        ...


def _messages(fd: descriptor_pb2.FileDescriptorProto) -> dict[str, descriptor_pb2.DescriptorProto]:
    out: dict[str, descriptor_pb2.DescriptorProto] = {}

    def walk(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{message.name}" if prefix else message.name
        if not message.options.map_entry:
            out[name] = message
        for nested in message.nested_type:
            walk(name, nested)

    for message in fd.message_type:
        walk(fd.package, message)
    return out


class ProtoDirRegistry:
    """A directory of .proto files, compiled once by protoc (grpcio-tools) into descriptors."""

    def __init__(self, root: Path, toolchain: GoToolchain) -> None:
        self.root = root.resolve()
        self.toolchain = toolchain
        self._files: dict[str, descriptor_pb2.FileDescriptorProto] | None = None

    def descriptors(self) -> dict[str, descriptor_pb2.FileDescriptorProto]:
        """Every file of the registry and its imports, by path.

        Raises:
            RegistryError: no .proto files, or protoc rejected them (its first diagnostics quoted).
        """
        if self._files is not None:
            return self._files
        protos = sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*.proto"))
        if not protos:
            raise RegistryError("registry", f"no .proto files in the schema registry {self.root.name}/")
        with tempfile.TemporaryDirectory(prefix="goresolve-registry-") as tmp:
            out = Path(tmp) / "set.pb"
            args = [f"-I{self.root}", f"--descriptor_set_out={out}", "--include_imports", *protos]
            done = self.toolchain.protoc(args, cwd=self.root)
            if done.exit_code != 0:
                lines = [line.replace(f"{self.root}/", "") for line in done.stderr.splitlines() if line.strip()][:3]
                raise RegistryError("registry", "protoc rejected the registry: " + "; ".join(lines)[:500])
            try:
                fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
            except (OSError, DecodeError) as exc:
                raise RegistryError("registry", f"protoc wrote no readable descriptor set ({exc})") from None
        self._files = {fd.name: fd for fd in fds.file}
        return self._files

    def lookup(self, names: Sequence[str]) -> Resolved:
        files = self.descriptors()
        index: dict[str, tuple[str, descriptor_pb2.DescriptorProto]] = {}
        for path, fd in files.items():
            for full, message in _messages(fd).items():
                index[full] = (path, message)
        wanted = list(dict.fromkeys(n.strip().lstrip(".") for n in names))
        missing = [n for n in wanted if n not in index]
        if missing:
            known = sorted(index)
            suggestions = {n: difflib.get_close_matches(n, known, n=3, cutoff=0.6) for n in missing}
            raise UnknownMessage("lookup", missing, suggestions)
        infos: list[MessageInfo] = []
        for name in wanted:
            path, message = index[name]
            fields = [
                FieldInfo(
                    name=f.name,
                    type=_TYPE_NAMES.get(f.type, "unknown"),
                    type_name=f.type_name.lstrip(".") or None,
                    repeated=f.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                )
                for f in message.field
            ]
            infos.append(MessageInfo(full_name=name, package=files[path].package, file=path, fields=fields))
        return Resolved(messages=infos, files=self._closure([i.file for i in infos]), source_root=str(self.root))

    def _closure(self, roots: list[str]) -> list[str]:
        """The files `roots` need, dependencies first; the well-known types come with the Go runtime."""
        files = self.descriptors()
        order: list[str] = []

        def visit(path: str) -> None:
            if path in order or path not in files or path.startswith("google/protobuf/"):
                return
            for dep in files[path].dependency:
                visit(dep)
            order.append(path)

        for path in roots:
            visit(path)
        return order

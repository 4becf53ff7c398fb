"""Running a rendered container's process on this machine: its own env and args, with each of its mount
paths replaced by a local directory (there is no kubelet here), so a test exercises exactly the
settings the chart gives it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def remap(value: str, mounts: Mapping[str, Path]) -> str:
    """A path in a mount (or anything else, unchanged) as the path in that mount's local directory."""
    for mount in sorted(mounts, key=len, reverse=True):  # the longest (most specific) mount wins
        if value == mount or value.startswith(mount + "/"):
            return str(mounts[mount]) + value[len(mount) :]
    return value


def local_env(container: Mapping[str, Any], mounts: Mapping[str, Path]) -> dict[str, str]:
    """The container's plain env values (secret references left out), mount paths remapped."""
    return {e["name"]: remap(str(e["value"]), mounts) for e in container.get("env", []) if "value" in e}


def local_args(container: Mapping[str, Any], mounts: Mapping[str, Path]) -> list[str]:
    return [remap(str(a), mounts) for a in container.get("args", [])]


def mount_dirs(container: Mapping[str, Any], root: Path) -> dict[str, Path]:
    """A fresh local directory for each of the container's mounts."""
    dirs: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        local = root / container["name"] / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        dirs[mount["mountPath"]] = local
    return dirs


def policies_with(target: Path, identity: str) -> None:
    """The project's policies plus `identity` granted what the bundled `agent` identity has."""
    shutil.copytree(REPO_ROOT / "policies", target, dirs_exist_ok=True)
    access = yaml.safe_load((target / "access.yaml").read_text(encoding="utf-8"))
    access["identities"][identity] = access["identities"]["agent"]
    (target / "access.yaml").write_text(yaml.safe_dump(access), encoding="utf-8")


def base_env() -> dict[str, str]:
    """This machine's environment without any goresolve setting (the container's own are added)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextmanager
def run_server(
    module: str, container: Mapping[str, Any], mounts: Mapping[str, Path], port: int, log: Path
) -> Generator[subprocess.Popen[bytes]]:
    """The server `module` with the container's env and args; yields once its port accepts connections."""
    env = {**base_env(), **local_env(container, mounts)}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *local_args(container, mounts)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not listen on {port}:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def write_projected_secrets(
    spec: Mapping[str, Any], volume: str, manifests: list[dict[str, Any]], target: Path
) -> dict[str, str]:
    """What the kubelet writes for a projected volume of Secrets: each item's path holding the value of its
    key in the rendered Secret. Returns path -> value."""
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in manifests if d["kind"] == "Secret"}
    return project_secrets(spec, volume, secrets, target)


class MountError(Exception):
    """The kubelet cannot set up a volume (the pod stays in ContainerCreating)."""


def project_secrets(
    spec: Mapping[str, Any], volume: str, secrets: Mapping[str, Mapping[str, str]], target: Path
) -> dict[str, str]:
    """The kubelet's projected volume of Secrets from `secrets` (name -> data): a source marked `optional`
    whose Secret or key is missing is left out; any other missing one fails the mount. Returns path -> value."""
    [vol] = [v for v in spec["volumes"] if v["name"] == volume]
    written: dict[str, str] = {}
    for source in vol["projected"]["sources"]:
        secret = source["secret"]
        data = secrets.get(secret["name"])
        optional = secret.get("optional", False)
        if data is None:
            if optional:
                continue
            raise MountError(f'secret "{secret["name"]}" not found')
        for item in secret["items"]:
            if item["key"] not in data:
                if optional:
                    continue
                raise MountError(f"couldn't find key {item['key']} in Secret {secret['name']}")
            (target / item["path"]).write_text(data[item["key"]], encoding="utf-8")
            written[item["path"]] = data[item["key"]]
    return written


def kube_expand(value: str, env: Mapping[str, str]) -> str:
    """`value` with each `$(NAME)` of a variable in `env` replaced, as the kubelet expands args and env
    values (`$$` is a literal `$`; a reference to an undefined variable stays as it is)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if value.startswith("$(", i):
            end = value.find(")", i)
            name = value[i + 2 : end] if end > 0 else ""
            if name in env:
                out.append(env[name])
                i = end + 1
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


def resolved_env(container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: secret references read from `secrets` (Secret
    name -> data), and each value expanded with the variables defined before it."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = kube_expand(str(item["value"]), env)
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    return env

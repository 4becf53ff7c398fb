"""Rendering the chart with the Helm binary that scripts/install-helm.sh installs (cached by version)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "goresolve"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))


@functools.cache
def helm() -> str:
    """The helm binary (installed from the Go module proxy on first use, then cached)."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "install-helm.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/install-helm.sh failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return out.stdout.strip().splitlines()[-1]


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120, check=False)


def render(
    *,
    values: Path | None = None,
    kube_version: str = "1.34.0",
    namespace: str = "goresolve",
    release: str = "gr",
    sets: tuple[str, ...] = (),
    set_files: tuple[str, ...] = (),
    set_json: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """`helm template` as a list of manifests. Raises RuntimeError with Helm's message when it fails."""
    args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", kube_version]
    if values is not None:
        args += ["--values", str(values)]
    for item in sets:
        args += ["--set", item]
    for item in set_files:
        args += ["--set-file", item]
    for item in set_json:
        args += ["--set-json", item]
    out = run_helm(*args)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def job_template(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-ticket Job manifest the chart keeps in its job-template ConfigMap."""
    for doc in manifests:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-job-template"):
            return yaml.safe_load(doc["data"]["job.yaml"])
    raise AssertionError("no job-template ConfigMap rendered")

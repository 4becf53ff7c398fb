"""Without GitHub push events (a Jira-only install) the index is refreshed by running `goresolve index` in the
indexer's pod (docs/operations.md, "Jira only"): with that container's own environment it writes the index
that code-search, with its rendered settings, searches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.charts.pod import REPO_ROOT, base_env, local_env, mount_dirs
from tests.charts.render import CHART, job_template, render

pytestmark = pytest.mark.timeout(600)


def git_repo(path: Path) -> None:
    (path / "router").mkdir(parents=True)
    (path / "go.mod").write_text("module acme/svc\n\ngo 1.22\n")
    (path / "router" / "slash.go").write_text(
        "package router\n\n// Clean keeps the trailing slash of a route.\nfunc Clean(p string) string { return p }\n"
    )
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=path, check=True)


def test_goresolve_index_in_the_indexers_pod_writes_the_index_code_search_reads(tmp_path: Path) -> None:
    manifests = render(values=CHART / "ci" / "jira-only.yaml", sets=("codeSearch.embedder=hashing",))
    [indexer] = [d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == "gr-goresolve-indexer"]
    [container] = indexer["spec"]["template"]["spec"]["containers"]
    mounts = mount_dirs(container, tmp_path / "indexer")
    checkout = mounts["/var/lib/goresolve"] / "checkout"  # where the documented command clones
    git_repo(checkout)
    env = {**base_env(), **local_env(container, mounts), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "goresolve.cli", "index", str(checkout), "--repo", "svc"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spec = job_template(manifests)["spec"]["template"]["spec"]
    [search] = [c for c in spec["initContainers"] if c["name"] == "code-search"]
    search_mounts = mount_dirs(search, tmp_path / "agent")
    search_mounts["/var/lib/goresolve-index"] = mounts["/var/lib/goresolve-index"]  # the one index volume
    found = subprocess.run(
        [sys.executable, "-m", "goresolve.cli", "search", "trailing slash", "--repo", "svc", "--json"],
        env={**base_env(), **local_env(search, search_mounts), "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert [(h["repo"], h["path"], h["symbol"]) for h in hits] == [("svc", "router/slash.go", "router.Clean")]

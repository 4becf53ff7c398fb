"""The routing evaluation runs end to end on the held-out split and reproduces the figures in docs/benchmarks.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_the_held_out_evaluation_reproduces_the_recorded_figures(tmp_path: Path) -> None:
    out = tmp_path / "routing.json"
    done = subprocess.run(
        [sys.executable, "bench/routing.py", "--repeats", "0", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["split"] == "heldout" and figures["tickets"] >= 100
    assert figures["router"]["hard_to_cheap_rate"] <= 0.03
    docs = (REPO / "docs" / "benchmarks.md").read_text()
    for name, value in (
        ("routing hard-to-cheap", figures["router"]["hard_to_cheap_rate"]),
        ("routing rule precision", figures["rules"]["precision"]),
        ("routing classifier accuracy", figures["classifier"]["accuracy"]),
    ):
        line = f"{name}: {100 * value:.1f}%"
        assert line in done.stdout
        assert re.search(rf"^{re.escape(line)}$", docs, re.M), f"docs/benchmarks.md does not record {line!r}"


def test_the_split_keeps_repositories_apart_and_reserved_projects_out() -> None:
    data = REPO / "bench" / "data" / "routing"
    rows = [json.loads(line) for line in (data / "tickets.jsonl").read_text().splitlines()]
    split = json.loads((data / "split.json").read_text())["repositories"]
    assert len(rows) >= 300 and len({r["id"] for r in rows}) == len(rows)
    assert {r["repo"] for r in rows} == set(split)
    reserved = {"grpc/grpc-go", "zeromicro/go-zero", "spf13/cobra", "gin-gonic/gin", "go-chi/chi"}
    reserved |= {"hashicorp/raft", "labstack/echo", "urfave/cli", "prometheus/client_golang"}
    assert not {r["repo"].lower() for r in rows} & reserved
    tier = {"docs": "small", "trivial": "small", "security": "human"}
    for r in rows:
        assert r["tier"] == tier.get(r["kind"], "strong") and r["url"].startswith(f"https://github.com/{r['repo']}/")
    bank = json.loads((REPO / "agent" / "router" / "data" / "examples.json").read_text())
    assert {e["id"].split("#")[0] for e in bank} == {repo for repo, side in split.items() if side == "dev"}

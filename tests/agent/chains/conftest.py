"""A small Go repository with a unit big enough to be split by the indexer and an ADR, indexed by a real
code-search (hashing embedder, real LanceDB) that the chains reach over MCP (in-memory transport)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.servers import InProcessServer, ServersConfig, Toolbox, open_servers
from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.server import build_server
from servers.code_search.settings import CodeSearchSettings
from servers.common.policy import load_policies

REPO = "shop"
_STEPS = "\n".join(f"\tledger[{i}] = ledger[{i}]*rate + fee - discount[{i % 7}] // step {i}" for i in range(90))
FILES = {
    "go.mod": "module example.com/shop\n\ngo 1.21\n",
    "orders/orders.go": textwrap.dedent(
        """\
        // Package orders keeps customer orders.
        package orders

        // Order is one customer order; amounts are in cents.
        type Order struct {
        \tID    string
        \tLines []Line
        \tTaxBP int // tax in basis points
        }

        // Line is one item of an order.
        type Line struct {
        \tSKU   string
        \tCents int
        \tQty   int
        }

        // Total returns the order's total in cents, tax included.
        func (o *Order) Total() int {
        \tsum := 0
        \tfor _, l := range o.Lines {
        \t\tsum += l.Cents
        \t}
        \treturn sum + sum*o.TaxBP/10000
        }

        // NewOrder starts an empty order.
        func NewOrder(id string) *Order {
        \treturn &Order{ID: id}
        }
        """
    ),
    "ledger/reconcile.go": "// Package ledger settles accounts.\npackage ledger\n\n"
    "// Reconcile applies the nightly rate and fees to every ledger entry.\n"
    "func Reconcile(ledger []int, discount [7]int, rate, fee int) {\n" + _STEPS + "\n}\n\n"
    "// Balance sums the ledger.\nfunc Balance(ledger []int) int {\n\ttotal := 0\n"
    "\tfor _, v := range ledger {\n\t\ttotal += v\n\t}\n\treturn total\n}\n",
    "docs/adr/0002-money-in-cents.md": textwrap.dedent(
        """\
        # ADR 2: Money is kept in integer cents

        ## Decision

        Every amount (order totals, tax, refunds) is an int of cents. Tax is computed in basis points and
        rounded half up once per order, never per line.
        """
    ),
    "README.md": "# shop\n\nOrders and the ledger of the shop service.\n",
}


@dataclass(frozen=True)
class SearchWorld:
    root: Path
    repo: Path
    settings: CodeSearchSettings

    def server(self) -> Any:
        return build_server(self.settings, load_policies(self.settings.policy_dir), HashingEmbedder())

    def code_search(self) -> AbstractAsyncContextManager[Toolbox]:
        """code-search served in process and connected over MCP (opened inside the test's own task)."""
        return open_servers(ServersConfig((InProcessServer("code-search", self.server()),)))

    def file_lines(self, path: str) -> list[str]:
        return (self.repo / path).read_text().split("\n")


def _git(repo: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=60, env=env)


@pytest.fixture(scope="session")
def search_world(tmp_path_factory: pytest.TempPathFactory) -> SearchWorld:
    root = tmp_path_factory.mktemp("chains-world")
    repo = root / REPO
    for rel, text in FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "shop")
    policies = root / "policies"
    policies.mkdir()
    (policies / "access.yaml").write_text(f"identities:\n  local-dev: {{roles: [agent], repos: [{REPO}]}}\n")
    (policies / "tools.yaml").write_text("roles:\n  agent: {scopes: [code:read]}\n")
    (policies / "repos.yaml").write_text(f"repos:\n  {REPO}: {{path: {repo}}}\n")
    settings = CodeSearchSettings(
        state_dir=root / "state", db_dir=root / "db", policy_dir=policies, embedder="hashing", read_consistency_s=0
    )
    embedder = HashingEmbedder()
    index_repo(CodeIndex(root / "db", embedder.model_id, embedder.dim, create=True), embedder, repo, REPO)
    shutil.rmtree(root / "state", ignore_errors=True)
    return SearchWorld(root, repo, settings)

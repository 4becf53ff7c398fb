"""The triage chain on code-search's bug-localization set: does its context hold the fixed function?

    .venv/bin/python bench/triage_chain.py [--limit N] [--budget 3000]

The set is bench/data/code_search/bugs.jsonl (real fixes from five Go repositories; the query is the
fix's commit message with the changed identifiers removed, `query_raw` keeps them). As in
bench/code_search_bugs.py, per repository in date order, the index (MiniLM, real LanceDB) is brought
to each fix's parent commit incrementally. code-search is served in process and reached over MCP,
exactly as the agent reaches it. `--set ticket_loc` takes real issues instead (bench/data/ticket_loc: the
issue's title and description, `query` with the fix's identifiers removed, `query_raw` as written), for
the repositories with a bare mirror under $GORESOLVE_MIRRORS. For every fix with gold functions:

- triage chain: `agent.chains.triage` with the token budget;
- baseline, same run: one raw `search_code` call on the ticket text with the same token budget.

A hit is a gold function (path::symbol) among the context's units. Tokens are code-search's
estimate of the rendered context (the same header per unit for both). Reported per query variant
and per split (dev repos were looked at while tuning the chain, held-out ones were not).

For tuning, `--calls FILE` keeps code-search's answers by (commit, tool, arguments): a later run with
the same file replays the answers it has and asks (after indexing that commit) only for new calls, so
chain variants are compared in seconds instead of re-searching every ticket. Replayed figures hold
code-search's ranking at the time of recording; the figures quoted in docs/benchmarks.md come from live
runs (no `--calls`). `--details FILE` writes one line per ticket and variant: the gold, the raw call's
units, and for each chain setting its queries with the rank each gave a gold unit, and its context.
`--before REF` also measures agent/chains/triage.py as it was at commit REF, on the same index and the
same answers, so a change to the chain is measured before and after in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import types
from collections import defaultdict
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from code_search_bugs import RULES, SPLITS
from code_search_bugs_build import OUT, mirror
from code_search_common import RESULTS, WORK

from agent.chains.core import ChainContext
from agent.chains.extract import TicketText
from agent.chains.triage import ContextUnit, TriageSettings, count_tokens, render, triage
from agent.servers import InProcessServer, ServersConfig, Toolbox, ToolOutcome, connect
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.minilm import MiniLMEmbedder
from servers.code_search.server import build_server
from servers.code_search.settings import CodeSearchSettings
from servers.common.policy import load_policies

SEEDS = {"bugs": "bugs-db", "ticket_loc": "ticket-loc-db"}
TICKET_LOC = Path(__file__).resolve().parent / "data" / "ticket_loc" / "tickets.jsonl"
MIRRORS = Path(os.environ.get("GORESOLVE_MIRRORS", str(WORK / "mirrors")))


def policies(root: Path, repos: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "access.yaml").write_text(f"identities:\n  bench: {{roles: [reader], repos: [{', '.join(repos)}]}}\n")
    (root / "tools.yaml").write_text("roles:\n  reader: {scopes: [code:read]}\n")
    (root / "repos.yaml").write_text("repos:\n" + "".join(f"  {r}: {{path: /nowhere/{r}}}\n" for r in repos))
    return root


def fresh_index(embedder: MiniLMEmbedder, which: str, tag: str) -> CodeIndex:
    """A new index; the embedding cache (content hash -> vector) is kept, or seeded from the same set's
    code-search benchmark (vectors only: every chunk is indexed again)."""
    db = WORK / f"triage-db-{tag}"
    for table in db.glob("*.lance") if db.exists() else []:
        if not table.name.endswith("__vectors.lance"):
            shutil.rmtree(table)
    seed = WORK / SEEDS[which] / f"{embedder.model_id}__vectors.lance"
    if tag != which and (WORK / f"triage-db-{which}" / seed.name).exists():
        seed = WORK / f"triage-db-{which}" / seed.name  # the set's own runs embedded more
    own = db / seed.name
    if seed.exists() and not own.exists():
        db.mkdir(parents=True, exist_ok=True)
        shutil.copytree(seed, own)
    return CodeIndex(db, embedder.model_id, embedder.dim, create=True)


def load_rows(which: str) -> list[dict[str, Any]]:
    """Rows as `measure` reads them: id, repo, github, parent, query, query_raw, gold_functions, split."""
    if which == "bugs":
        rows = [json.loads(line) for line in OUT.read_text().splitlines()]
        for row in rows:
            row["split"] = next(s for s, repos in SPLITS.items() if row["repo"] in repos)
        return rows
    rows = []
    for line in TICKET_LOC.read_text().splitlines():
        row = json.loads(line)
        if not (MIRRORS / row["repo"].replace("/", "+") / "repo").exists():
            continue  # no local mirror: the set's other repositories are not fetched here
        row |= {"github": row["repo"], "repo": row["repo"].split("/")[1], "parent": row["base_commit"]}
        rows.append(row)
    return sorted(rows, key=lambda r: (r["repo"], r["time"]))


def ticket_of(row: dict[str, Any], variant: str) -> TicketText:
    title, _, body = str(row[variant]).partition("\n")
    return TicketText(key=row["id"], title=title.strip(), body=body.strip())


def units_of(structured: dict[str, Any] | None) -> list[ContextUnit]:
    keys = ("path", "start_line", "end_line", "symbol", "kind", "code")
    return [ContextUnit(**{k: u[k] for k in keys}) for u in (structured or {}).get("units") or []]


class Recorded:
    """code-search's answers by (commit, tool, arguments), replayed when known; a new call indexes the
    row's commit first (once per row) and is asked live. `log` holds the calls since it was last cleared."""

    def __init__(self, box: Toolbox, path: Path | None, index_row: Any) -> None:
        self.box, self.path, self.index_row = box, path, index_row
        self.answers: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            self.answers = json.loads(path.read_text())
        self.row: dict[str, Any] = {}
        self.indexed: str | None = None
        self.asked = 0
        self.log: list[tuple[str, dict[str, Any], ToolOutcome]] = []

    async def call(self, tool: str, args: dict[str, Any]) -> ToolOutcome:
        key = json.dumps([self.row["github"], self.row["parent"], tool, args], sort_keys=True)
        known: dict[str, Any] | None = self.answers.get(key)
        if known is None:
            if self.indexed != self.row["id"]:
                self.index_row(self.row)
                self.indexed = self.row["id"]
            outcome = await self.box.call(tool, args)
            self.asked += 1
            known = {"ok": outcome.ok, "text": outcome.text, "structured": outcome.structured}
            if self.path is not None:
                self.answers[key] = known
        outcome = ToolOutcome(ok=known["ok"], text=known["text"], structured=known["structured"])
        self.log.append((tool, args, outcome))
        return outcome

    def save(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps(self.answers))


def _keys(units: list[ContextUnit]) -> list[str]:
    return [f"{u.path}::{u.symbol}" for u in units]


async def measure(
    which: str,
    rows: list[dict[str, Any]],
    budget: int,
    variants: list[dict[str, str]],
    calls: Path | None = None,
    details: Path | None = None,
    tag: str | None = None,
    before: Any = None,
) -> dict[str, Any]:
    embedder = MiniLMEmbedder()
    opened: list[CodeIndex] = []

    def open_index() -> CodeIndex:
        """The index is made afresh on first use: a replay that asks nothing live never touches it."""
        if not opened:
            opened.append(fresh_index(embedder, which, tag or which))
        return opened[0]

    settings = CodeSearchSettings(
        state_dir=WORK / f"triage-state-{tag or which}",
        db_dir=WORK / f"triage-db-{tag or which}",
        policy_dir=policies(WORK / f"triage-policies-{tag or which}", sorted({r["repo"] for r in rows})),
        stdio_identity="bench",
        embedder="minilm",
        read_consistency_s=0,
        log_level="WARNING",
    )
    server = build_server(settings, load_policies(settings.policy_dir), embedder, index_opener=open_index)
    # per variant, per split: hits and tokens for chain and raw
    acc: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    chain_s: list[float] = []
    async with AsyncExitStack() as stack:
        box: Toolbox = await connect(ServersConfig((InProcessServer("code-search", server),)), stack)

        def index_row(row: dict[str, Any]) -> None:
            index_repo(open_index(), embedder, mirror(row["github"]), row["repo"], row["parent"], rules=RULES)

        tools = Recorded(box, calls, index_row)
        lines: list[str] = []
        for number, row in enumerate(rows, start=1):
            tools.row = row
            if calls is None:
                index_row(row)  # a live run indexes every commit in order, as before
                tools.indexed = row["id"]
            gold = set(row["gold_functions"])
            split = row["split"]
            for variant in ("query", "query_raw"):
                ticket = ticket_of(row, variant)
                raw = await tools.call(
                    "search_code", {"query": ticket.text, "repos": [row["repo"]], "token_budget": budget}
                )
                raw_units = units_of(raw.structured)
                measured = [("raw", raw_units, count_tokens(render(raw_units)))]
                detail: dict[str, Any] = {"id": row["id"], "variant": variant, "gold": sorted(gold)}
                detail["raw"] = _keys(raw_units)
                for number_v, variant_spec in enumerate(variants):
                    started = time.perf_counter()
                    settings = TriageSettings.model_validate(variant_spec)
                    ctx = ChainContext(call_tool=tools.call)
                    tools.log.clear()
                    result = await triage(ticket, ctx, repo=row["repo"], budget=budget, settings=settings)
                    chain_s.append(time.perf_counter() - started)
                    spec = ",".join(f"{k}={v}" for k, v in variant_spec.items())
                    name = "chain" if number_v == 0 else f"chain[{spec}]"
                    measured.append((name, result.units, result.tokens))
                    detail[name] = {"context": _keys(result.units), "queries": _query_ranks(tools.log, result, gold)}
                if before is not None:  # the chain as it was at another commit, on the same index and answers
                    tools.log.clear()
                    ctx = ChainContext(call_tool=tools.call)
                    result = await before.triage(ticket, ctx, repo=row["repo"], budget=budget)
                    measured.append((f"chain@{before.ref}", result.units, result.tokens))
                    detail[f"chain@{before.ref}"] = {"context": _keys(result.units)}
                for name, units, tokens in measured:
                    hit = bool(gold & {f"{u.path}::{u.symbol}" for u in units})
                    for where in (split, "all", f"repo {row['repo']}"):
                        acc[variant][where][f"{name}.hit"].append(float(hit))
                        acc[variant][where][f"{name}.tokens"].append(float(tokens))
                lines.append(json.dumps(detail))
            if number % 10 == 0:
                tools.save()
                done = acc["query"]["all"]
                print(
                    f"{number}/{len(rows)}: chain {statistics.mean(done['chain.hit']):.2f} "
                    f"raw {statistics.mean(done['raw.hit']):.2f}",
                    flush=True,
                )
        tools.save()
    if details is not None:
        details.write_text("".join(line + "\n" for line in lines))
    out: dict[str, Any] = {"fixes": len(rows), "budget": budget, "chain_p50_s": round(statistics.median(chain_s), 3)}
    out["calls_asked_live"] = tools.asked
    for variant, splits in acc.items():
        out[variant] = {
            where: {"n": len(v["chain.hit"])}
            | {
                f"{name}_{what}": round(statistics.mean(v[key]), 3) if what == "hit" else statistics.median(v[key])
                for key in sorted(v)
                for name, what in [key.rsplit(".", 1)]
            }
            for where, v in sorted(splits.items())
        }
    return out


def chain_at(ref: str) -> Any:
    """agent/chains/triage.py as it was at `ref`, loaded as its own module (it imports today's agent.chains
    core and extract): the chain before a change, measured in the same run as the chain after it."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{ref}:agent/chains/triage.py"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    module = types.ModuleType(f"triage_at_{ref}")
    sys.modules[module.__name__] = module  # pydantic resolves the module's annotations through it
    exec(compile(source, f"{ref}:agent/chains/triage.py", "exec"), module.__dict__)
    module.__dict__["ref"] = ref
    return module


def _query_ranks(
    log: list[tuple[str, dict[str, Any], ToolOutcome]], result: Any, gold: set[str]
) -> list[dict[str, Any]]:
    """Each planned query with its answer's units and the rank (from 0) of each gold unit in it."""
    answers: dict[tuple[str, str, str | None], list[str]] = {}
    for tool, args, outcome in log:
        if tool == "search_code" and args.get("kinds") != ["doc"]:
            answers.setdefault(("search", args["query"], args.get("path_prefix")), _keys(units_of(outcome.structured)))
        elif tool == "get_symbol":
            answers.setdefault(("symbol", args["symbol"], None), _keys(units_of(outcome.structured)))
    out: list[dict[str, Any]] = []
    for query in result.queries:
        found = answers.get((query.kind, query.text, query.path_prefix), [])
        text = query.text if len(query.text) <= 80 else query.text[:77] + "..."
        out.append(
            {"source": query.source, "weight": query.weight, "text": text, "prefix": query.path_prefix, "units": found}
            | {"gold_ranks": [i for i, key in enumerate(found) if key in gold]}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="Only the first N fixes with gold functions.")
    parser.add_argument("--budget", type=int, default=3000, help="Token budget of both contexts.")
    parser.add_argument("--repos", nargs="*", default=None, help="Only these repositories (e.g. mux logrus viper).")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="SETTING=VALUE,...",
        help="Also measure the chain with these TriageSettings (tuning is judged on the dev repos only).",
    )
    parser.add_argument(
        "--set",
        choices=("bugs", "ticket_loc"),
        default="bugs",
        help="bugs: code-search's bug-localization set; ticket_loc: real issues (repositories with a local mirror).",
    )
    parser.add_argument(
        "--calls", type=Path, default=None, help="Replay code-search's answers kept in this file; keep new ones."
    )
    parser.add_argument("--details", type=Path, default=None, help="Write per-ticket queries and contexts here.")
    parser.add_argument(
        "--work", default=None, metavar="TAG", help="Own index and state directories (two runs at once need two)."
    )
    parser.add_argument(
        "--before", default=None, metavar="REF", help="Also measure the triage chain as it was at this git commit."
    )
    parser.add_argument("--save", action=argparse.BooleanOptionalAction, default=True, help="Write the results file.")
    args = parser.parse_args()
    rows = load_rows(args.set)
    rows = [r for r in rows if r["gold_functions"] and (not args.repos or r["repo"] in args.repos)]
    rows = rows[: args.limit] if args.limit else rows
    started = time.perf_counter()
    variants = [{}] + [dict(kv.split("=", 1) for kv in spec.split(",")) for spec in args.variant]
    result = anyio.run(
        measure,
        args.set,
        rows,
        args.budget,
        variants,
        args.calls,
        args.details,
        args.work,
        chain_at(args.before) if args.before else None,
    )
    result["total_seconds"] = round(time.perf_counter() - started)
    result["set"] = args.set
    print(json.dumps(result, indent=2))
    for variant, label in (("query", "identifiers removed"), ("query_raw", "as written")):
        for where, q in result[variant].items():
            then = f", chain at {args.before} {q[f'chain@{args.before}_hit']:.0%}" if args.before else ""
            print(
                f"{label}, {where} (n={q['n']}): triage context hit: {q['chain_hit']:.0%} vs raw search "
                f"{q['raw_hit']:.0%} (median tokens {q['chain_tokens']:.0f} vs {q['raw_tokens']:.0f}, "
                f"budget {args.budget}{then})"
            )
    if args.save:
        name = (
            "triage_chain" + ("" if args.set == "bugs" else "_ticket_loc") + "".join(f"-{r}" for r in args.repos or [])
        )
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {path}")


if __name__ == "__main__":
    main()

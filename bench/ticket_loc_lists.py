"""Whole-file lists the server does not gather, fused beside its ranking of recorded tickets.

    GORESOLVE_MIRRORS=mirrors .venv/bin/python bench/ticket_loc_lists.py RECORD.jsonl [...] \\
        --list NAME [--weights 0 0.5 1 2]

A record is what `bench/ticket_localization.py --record FILE` appended for each ticket (the lists the
server gathered, the base commit and its .go files). For each ticket this computes one more ranking of
whole files from the repository at the base commit (read from its bare mirror, nothing checked out),
then ranks the recorded lists with the server's own `rank` and adds the new list as one more whole-file
list: every unit of a listed file gets weight / (60 + rank + 1), scaled by the unit's kind prior, as the
server's whole-file BM25 list does. Reported per repository, identifiers removed: the list alone (file
recall@5 and the share of gold files in its top 30), and file recall@5 / function recall@10 at each
weight (0 is the shipped ranking).

The lists:
  outline  BM25 over each file's outline: its path and the names it declares (funcs, methods, types);
  callees  files defining what the top 5 ranked units call (a name defined in at most 3 files);
  callers  files calling the top 5 ranked units' functions (a name called from at most 10 files);
  recent   files changed by the 50 non-merge commits before the base, most recent first;
  prf      BM25 over whole non-test files, the query expanded by the 20 terms with the best tf-idf in
           the top 3 ranked files (pseudo-relevance feedback);
  package  BM25 over whole non-test files in the directories of the top 3 ranked files (not those);
  literals BM25 over each non-test file's string literals;
  comments BM25 over each non-test file's comments.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from code_search_bugs_build import mirror
from code_search_replay import candidates, load
from ticket_localization import RULES

from servers.code_search import gitrepo
from servers.code_search.model import Hit, code_text
from servers.code_search.query import parse_query
from servers.code_search.search import RRF_K, is_test, prior, rank
from servers.code_search.source import snapshot

DECL = re.compile(r"^(?:func\s+(?:\(\s*\w*\s*\*?\s*(\w+)[^)]*\)\s*)?(\w+)|type\s+(\w+))", re.M)
TYPE_GROUP = re.compile(r"^type\s*\(\s*$(.*?)^\)", re.M | re.S)
GROUP_ITEM = re.compile(r"^\s+(\w+)\s", re.M)
CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
BUILTINS = frozenset(
    [
        "if",
        "for",
        "switch",
        "func",
        "return",
        "make",
        "len",
        "append",
        "new",
        "cap",
        "panic",
        "copy",
        "delete",
        "string",
        "int",
        "error",
        "byte",
        "bool",
        "uint",
        "int64",
        "uint64",
        "float64",
        "close",
        "recover",
        "print",
        "println",
        "range",
        "go",
        "defer",
        "select",
        "map",
        "chan",
        "Errorf",
        "Sprintf",
        "New",
        "Error",
        "String",
    ]
)
TOP_UNITS = 5
LIST_DEPTH = 30
RECENT_COMMITS = 50
PRF_FILES = 3
PRF_TERMS = 20
Source = tuple[str, str]  # (repo, base commit)


class Repo:
    """The .go files of one base commit, read once (records of one commit are consecutive)."""

    def __init__(self) -> None:
        self.key: Source | None = None
        self.text: dict[str, str] = {}
        self.defs: dict[str, list[str]] = {}
        self.paths: list[str] = []
        self.docs: list[list[str]] = []
        self.retriever: bm25s.BM25 | None = None

    def at(self, record: dict[str, Any]) -> Repo:
        key = (record["repo"], record["base_commit"])
        if key != self.key:
            snap = snapshot(mirror(record["repo"]), record["base_commit"], RULES)  # the files the record's paths list
            self.key = key
            self.text = {p: data.decode("utf-8", "replace") for p, data in snap.read(sorted(snap.files))}
            self.defs = defaultdict(list)
            for path, text in self.text.items():
                for _, func, typ in DECL.findall(text):
                    if path not in self.defs[func or typ]:
                        self.defs[func or typ].append(path)
            self.retriever = None
        return self

    def whole_files(self) -> bm25s.BM25:
        """BM25 over whole non-test files of this commit (`paths`, `docs`), built on first use."""
        if self.retriever is None:
            self.paths = [p for p in sorted(self.text) if not is_test(p)]
            self.docs = [code_text(self.text[p]).split() for p in self.paths]
            self.retriever = bm25s.BM25(k1=1.2, b=0.75)
            self.retriever.index(self.docs, show_progress=False)
        return self.retriever


def outline(state: Repo, record: dict[str, Any], units: list[Hit]) -> list[str]:
    paths = list(state.text)
    docs = []
    for path in paths:
        text = state.text[path]
        names = [func or typ for _, func, typ in DECL.findall(text)]
        names += [n for block in TYPE_GROUP.findall(text) for n in GROUP_ITEM.findall(block)]
        docs.append(code_text(re.sub(r"[/_.-]", " ", path[:-3]) + " " + " ".join(names)).split())
    query = parse_query(record["stripped"]["query"]).fts_text.split()
    if not query or not paths:
        return []
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index(docs, show_progress=False)
    scores = retriever.get_scores(query)
    return [paths[i] for i in np.argsort(-scores, kind="stable")[:LIST_DEPTH] if scores[i] > 0]


STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`')
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def _field_list(state: Repo, record: dict[str, Any], field: re.Pattern[str]) -> list[str]:
    """BM25 over one field of each non-test file (its string literals, or its comments)."""
    paths = [p for p in sorted(state.text) if not is_test(p)]
    docs = [code_text(" ".join(field.findall(state.text[p]))).split() for p in paths]
    query = parse_query(record["stripped"]["query"]).fts_text.split()
    if not query or not paths:
        return []
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index([d or ["\0"] for d in docs], show_progress=False)
    scores = retriever.get_scores(query)
    return [paths[i] for i in np.argsort(-scores, kind="stable")[:LIST_DEPTH] if scores[i] > 0]


def literals(state: Repo, record: dict[str, Any], units: list[Hit]) -> list[str]:
    return _field_list(state, record, STRING)


def comments(state: Repo, record: dict[str, Any], units: list[Hit]) -> list[str]:
    return _field_list(state, record, COMMENT)


def _top(units: list[Hit], state: Repo) -> list[Hit]:
    return [h for h in units if not is_test(h.path) and h.path in state.text][:TOP_UNITS]


def callees(state: Repo, record: dict[str, Any], units: list[Hit]) -> list[str]:
    scores: dict[str, float] = defaultdict(float)
    for r, hit in enumerate(_top(units, state)):
        body = "\n".join(state.text[hit.path].splitlines()[hit.start_line - 1 : hit.end_line])
        for name in sorted({m for m in CALL.findall(body) if m not in BUILTINS}):  # sorted: runs agree on ties
            defined = state.defs.get(name, [])
            files = [f for f in defined if f != hit.path]
            if 0 < len(defined) <= 3:
                for f in files:
                    scores[f] += 1.0 / (r + 1) / len(files)
    return sorted(scores, key=lambda f: -scores[f])[:LIST_DEPTH]


def callers(state: Repo, record: dict[str, Any], units: list[Hit]) -> list[str]:
    scores: dict[str, float] = defaultdict(float)
    for r, hit in enumerate(_top(units, state)):
        name = hit.symbol.rsplit(".", 1)[-1]
        if name in BUILTINS or len(state.defs.get(name, [])) > 3:
            continue
        call = re.compile(r"\b" + re.escape(name) + r"\s*\(")
        files = [p for p, text in state.text.items() if p != hit.path and call.search(text)]
        if 0 < len(files) <= 10:
            for f in files:
                scores[f] += 1.0 / (r + 1) / len(files)
    return sorted(scores, key=lambda f: -scores[f])[:LIST_DEPTH]


def _top_files(units: list[Hit], state: Repo, n: int) -> list[str]:
    return list(dict.fromkeys(h.path for h in units if not is_test(h.path) and h.path in state.text))[:n]


def _ranked(state: Repo, scores: np.ndarray[Any, Any], keep: Callable[[str], bool]) -> list[str]:
    order = np.argsort(-scores, kind="stable")
    return [state.paths[i] for i in order if scores[i] > 0 and keep(state.paths[i])][:LIST_DEPTH]


def prf(state: Repo, record: dict[str, Any], units: list[Hit]) -> list[str]:
    retriever = state.whole_files()
    query = parse_query(record["stripped"]["query"]).fts_text.split()
    if not query or not state.paths:
        return []
    at = {p: i for i, p in enumerate(state.paths)}
    df: dict[str, int] = defaultdict(int)
    for doc in state.docs:
        for term in set(doc):
            df[term] += 1
    n_docs = len(state.docs)
    weights: dict[str, float] = defaultdict(float)
    for f in _top_files(units, state, PRF_FILES):
        doc = state.docs[at[f]]
        tf: dict[str, int] = defaultdict(int)
        for term in doc:
            tf[term] += 1
        for term, count in tf.items():
            weights[term] += count / len(doc) * np.log(n_docs / df[term])
    asked = set(query)
    best = sorted(weights, key=lambda t: (-weights[t], t))  # name breaks ties: runs agree
    expansion = [t for t in best if weights[t] > 0 and t not in asked and len(t) > 2][:PRF_TERMS]
    return _ranked(state, retriever.get_scores(query + expansion), lambda p: True)


def package(state: Repo, record: dict[str, Any], units: list[Hit]) -> list[str]:
    retriever = state.whole_files()
    query = parse_query(record["stripped"]["query"]).fts_text.split()
    if not query or not state.paths:
        return []
    top = _top_files(units, state, 3)
    dirs = {f.rsplit("/", 1)[0] if "/" in f else "" for f in top}

    def near(p: str) -> bool:
        return p not in top and (p.rsplit("/", 1)[0] if "/" in p else "") in dirs

    return _ranked(state, retriever.get_scores(query), near)


def recent(state: Repo, record: dict[str, Any], units: list[Hit]) -> list[str]:
    commits = gitrepo.history(mirror(record["repo"]), record["base_commit"], RECENT_COMMITS)
    return list(dict.fromkeys(p for _, _, paths in commits for p in paths if p in state.text))[:LIST_DEPTH]


LISTS: dict[str, Callable[[Repo, dict[str, Any], list[Hit]], list[str]]] = {
    "outline": outline,
    "callees": callees,
    "callers": callers,
    "recent": recent,
    "prf": prf,
    "package": package,
    "literals": literals,
    "comments": comments,
}


def fused(units: list[Hit], files: list[str], weight: float) -> tuple[list[str], list[str]]:
    """(files, functions) of the top 50 units once `files` is fused in, as the benchmark reads them."""
    at = {f: r for r, f in reversed(list(enumerate(files)))}

    def score(hit: Hit) -> float:
        r = at.get(hit.path)
        return hit.score + (weight / (RRF_K + r + 1) * prior(hit) if r is not None and weight else 0.0)

    top = sorted(units, key=lambda h: -score(h))[:50]
    return list(dict.fromkeys(h.path for h in top)), list(dict.fromkeys(f"{h.path}::{h.symbol}" for h in top))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", nargs="+", type=Path)
    parser.add_argument("--list", choices=sorted(LISTS), required=True)
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.5, 1.0, 2.0])
    args = parser.parse_args(argv)
    state = Repo()
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in load(args.records):
        parsed = parse_query(record["stripped"]["query"])
        units = rank(parsed, candidates(record, "stripped"), 300)
        files = LISTS[args.list](state.at(record), record, units)
        gold_files, gold_funcs = set(record["gold_files"]), set(record["gold_functions"])
        row = rows[record["repo"]]
        row["alone_file_r5"].append(len(set(files[:5]) & gold_files) / len(gold_files))
        row["alone_in_top30"].append(len(set(files) & gold_files) / len(gold_files))
        for weight in args.weights:
            top_files, top_funcs = fused(units, files, weight)
            row[f"w{weight:g}_file_r5"].append(len(set(top_files[:5]) & gold_files) / len(gold_files))
            if gold_funcs:
                row[f"w{weight:g}_func_r10"].append(len(set(top_funcs[:10]) & gold_funcs) / len(gold_funcs))
    per_repo = {
        repo: {"tickets": len(row["alone_file_r5"]), **{k: round(statistics.fmean(v), 3) for k, v in row.items()}}
        for repo, row in sorted(rows.items())
    }
    metrics = sorted({k for r in per_repo.values() for k in r if k != "tickets"})
    macro = {k: round(statistics.fmean(r[k] for r in per_repo.values() if k in r), 3) for k in metrics}
    result = {"list": args.list, "per_repo": per_repo, "macro": macro}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

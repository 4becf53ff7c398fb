"""A ticket->code cross-encoder trained here, reranking code-search's top files on the ticket set (issue 12).

No package here ships a reranker's weights, so this trains one: all-MiniLM-L6-v2 (the weights code-search
already installs) fine-tuned as a cross-encoder that reads a ticket and one code unit together. It is
trained only on the dev repositories (their dev tickets and their own commit history) and measured on the
held-out ones, over the candidates the shipped ranking gives.

    # 1. training groups: each dev ticket, and up to --per-repo commits of each dev repository's history
    #    whose message says something (1-4 non-test .go files, at most 300 lines), as query -> the units
    #    the change touched, against units it did not touch (same files, files holding the query's rarer
    #    words, random files); half the commit queries with the changed identifiers removed
    GORESOLVE_MIRRORS=mirrors .venv/bin/python bench/ticket_loc_rerank.py pairs --out W/pairs.jsonl
    # 2. training (torch and transformers are not dependencies of the project: a separate environment)
    python3 -m venv W/torch && W/torch/bin/pip install -c constraints.txt -e . torch transformers
    W/torch/bin/python bench/ticket_loc_rerank.py train W/pairs.jsonl --minutes 55 --out W/ce.pt
    # 3. the shipped ranking's candidates for the held-out tickets (a record of ticket_localization.py)
    GORESOLVE_MIRRORS=mirrors .venv/bin/python bench/ticket_localization.py --split heldout \\
        --embedder minilm --include-tests --record W/heldout-record.jsonl
    GORESOLVE_MIRRORS=mirrors .venv/bin/python bench/ticket_loc_rerank.py candidates W/heldout-record.jsonl \\
        --out W/cands.jsonl
    # 4. score them and compare
    W/torch/bin/python bench/ticket_loc_rerank.py score W/ce.pt W/cands.jsonl

A file's score is its best unit's (at most 3 units of each of the top 20 files, those the ranking hit);
`rrf` fuses the reranked order with the shipped one (reciprocal ranks, k=10: equal weight, chosen before
measuring). Printed per query variant: file recall@5 and function recall@10 of the shipped ranking, the
reranker alone and the fusion, and the reranker's time per ticket.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from code_search_bugs_build import mirror, strip_identifiers, wanted_file

from servers.code_search.query import parse_query

TICKETS = Path(__file__).resolve().parent / "data" / "ticket_loc" / "tickets.jsonl"
DEV_REPOS = (
    "junegunn/fzf",
    "caddyserver/caddy",
    "nats-io/nats-server",
    "rclone/rclone",
    "prometheus/prometheus",
    "restic/restic",
    "helm/helm",
)
Q_TOKENS = 80  # of the ticket's prose, before the unit's text
MAX_LEN = 176  # tokens of a (ticket, unit) pair
TOP_FILES = 20
UNITS_PER_FILE = 3
RRF_K = 10
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? ", re.M)
SKIP = re.compile(
    r"\b(bump|deps|dependabot|release|changelog|go\.mod|vendor|typo|lint|gofmt|fmt|readme|docs?:|merge|revert|version)\b",
    re.I,
)
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,}")
COMMON = frozenset(
    [
        "should",
        "would",
        "could",
        "there",
        "their",
        "which",
        "where",
        "about",
        "after",
        "before",
        "these",
        "those",
        "being",
        "using",
        "added",
        "adding",
        "remove",
        "removed",
        "change",
        "changes",
        "changed",
        "update",
        "updated",
        "support",
        "fixed",
        "fixes",
        "issue",
        "error",
        "value",
        "values",
        "return",
        "returns",
        "when",
        "while",
        "other",
        "first",
        "second",
        "config",
        "option",
        "options",
        "files",
        "file",
    ]
)


def ce_query(text: str) -> str:
    """What the cross-encoder reads of a ticket: its title and prose (template, dumps and code left out, as
    code-search reads them), then its first two error strings."""
    parsed = parse_query(text)
    return " ".join([parsed.prose, *parsed.errors[:2]])


# ---------------------------------------------------------------------------------------------- pairs


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, errors="replace")
    if check and proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, args)
    return proc.stdout


class Units:
    """Code units of files at a commit, chunked as code-search chunks them."""

    def __init__(self) -> None:
        from servers.code_search.chunker import GoChunker

        self._chunker = GoChunker()

    def at(self, repo: Path, rev: str, path: str) -> list[Any]:
        try:
            source = git(repo, "show", f"{rev}:{path}").encode()
        except subprocess.CalledProcessError:
            return []
        return (self._chunker.chunk(path, source) or []) if len(source) <= 400_000 else []


def unit_text(unit: Any) -> str:
    return f"{unit.symbol} {unit.kind} {unit.path}\n{unit.content}"


def group(
    units: Units, repo: Path, rng: random.Random, query: str, base: str, fix: str, files: list[str], tree: list[str]
) -> dict[str, Any] | None:
    """One training group: the units `fix` changed in `files` (positives) against units it did not change."""
    positives: list[str] = []
    same_file: list[str] = []
    names: set[str] = set()
    for path in files:
        ranges = []
        for start, count in HUNK.findall(git(repo, "diff", "-U0", base, fix, "--", path)):
            a, n = int(start), int(count or 1)
            ranges.append((a, a + n - 1) if n else (a, a + 1))
        for unit in units.at(repo, base, path):
            if any(lo <= unit.end_line and hi >= unit.start_line for lo, hi in ranges):
                if unit.kind in ("func", "method", "type"):
                    positives.append(unit_text(unit))
                    names.add(unit.name)
                    if unit.parent:
                        names.add(unit.parent.rsplit(".", 1)[-1])
            else:
                same_file.append(unit_text(unit))
    if not positives:
        return None
    words = [w for w in dict.fromkeys(WORD.findall(query)) if w.lower() not in COMMON and w not in names]
    rng.shuffle(words)
    lexical_files: list[str] = []
    for word in words[:3]:
        found = git(repo, "grep", "-l", "-w", "-I", word, base, "--", "*.go", check=False).splitlines()
        found = [f.split(":", 1)[1] for f in found if ":" in f]
        found = [f for f in found if wanted_file(f) and f not in files]
        if 0 < len(found) <= 60:
            lexical_files += rng.sample(found, min(2, len(found)))
    lexical: list[str] = []
    for path in dict.fromkeys(lexical_files):
        if found_units := units.at(repo, base, path):
            lexical += [unit_text(u) for u in rng.sample(found_units, min(2, len(found_units)))]
    random_units: list[str] = []
    for path in rng.sample(tree, min(3, len(tree))):
        if path not in files and (found_units := units.at(repo, base, path)):
            random_units.append(unit_text(rng.choice(found_units)))
    return {
        "q": query,
        "pos": positives[:4],
        "hard": rng.sample(same_file, min(4, len(same_file))),
        "lex": lexical[:6],
        "rand": random_units,
        "names": sorted(names),
    }


def history(units: Units, full: str, repo: Path, per_repo: int, rng: random.Random, exclude: set[str]) -> list[dict]:
    log = git(repo, "log", "--no-merges", "-n", "6000", "--format=%H%x00%P%x00%B%x1e", "HEAD")
    commits: list[tuple[str, str, str]] = []
    for rec in log.split("\x1e"):
        parts = rec.strip("\n").split("\x00")
        if len(parts) != 3:
            continue
        sha, parents, message = parts[0], parts[1], parts[2].strip()
        if not parents or " " in parents or sha in exclude:
            continue
        subject = message.splitlines()[0] if message else ""
        if len(message.split()) < 6 or SKIP.search(subject):
            continue
        commits.append((sha, parents, re.sub(r"\n(Signed-off-by|Co-authored-by|Change-Id):.*", "", message)))
    rng.shuffle(commits)
    out: list[dict] = []
    for sha, parent, message in commits:
        if len(out) >= per_repo:
            break
        files = [f for f in git(repo, "diff", "--name-only", parent, sha, check=False).splitlines() if wanted_file(f)]
        if not 1 <= len(files) <= 4:
            continue
        stat = git(repo, "diff", "--numstat", parent, sha, "--", *files, check=False)
        lines = sum(int(a) + int(b) for a, b, *_ in (ln.split("\t") for ln in stat.splitlines()) if a.isdigit())
        if lines > 300:
            continue
        tree = [f for f in git(repo, "ls-tree", "-r", "--name-only", parent).splitlines() if wanted_file(f)]
        g = group(units, repo, rng, message, parent, sha, files, tree)
        if g is not None:
            if rng.random() < 0.5:
                g["q"] = strip_identifiers(message, set(g["names"]), files)
            out.append({**g, "repo": full, "src": "commit"})
    return out


def pairs_command(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    units = Units()
    tickets = [json.loads(line) for line in TICKETS.read_text().splitlines() if line.strip()]
    exclude = {t["fix_commit"] for t in tickets}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as fh:
        for t in (t for t in tickets if t["split"] == "dev"):
            repo = mirror(t["repo"], args.mirrors)
            tree = [
                f for f in git(repo, "ls-tree", "-r", "--name-only", t["base_commit"]).splitlines() if wanted_file(f)
            ]
            for variant in ("query_raw", "query"):
                g = group(units, repo, rng, t[variant], t["base_commit"], t["fix_commit"], t["gold_files"], tree)
                if g is not None:
                    fh.write(json.dumps({**g, "repo": t["repo"], "src": "ticket"}) + "\n")
        for full in DEV_REPOS:
            groups = history(units, full, mirror(full, args.mirrors), args.per_repo, rng, exclude)
            fh.writelines(json.dumps(g) + "\n" for g in groups)
            print(f"{full}: {len(groups)} commit groups", flush=True)


# ------------------------------------------------------------------------------------- the model (torch)


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:
        sys.exit("this step needs torch and transformers, in an environment of their own (see the module docstring)")


def model_dir() -> Path:
    from servers.code_search.assets import MINILM, default_cache_dir, installed_dir

    found = installed_dir(default_cache_dir(), MINILM)
    if found is None:
        sys.exit("all-MiniLM-L6-v2 is not installed: run `goresolve model install` first")
    return found


class Encoder:
    """(ticket, unit) pairs as BERT's sentence pairs: [CLS] ticket [SEP] unit [SEP], cut to MAX_LEN tokens."""

    def __init__(self, torch: Any) -> None:
        from tokenizers import Tokenizer

        self.torch = torch
        self.tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tok.no_truncation()
        self.tok.no_padding()
        cls, sep = self.tok.token_to_id("[CLS]"), self.tok.token_to_id("[SEP]")
        if cls is None or sep is None:
            sys.exit("the tokenizer has no [CLS]/[SEP] tokens: not MiniLM's tokenizer.json")
        self.cls, self.sep = cls, sep

    def query(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids[:Q_TOKENS]

    def batch(self, pairs: list[tuple[list[int], str]]) -> tuple[Any, Any, Any]:
        rows: list[tuple[list[int], list[int]]] = []
        for q, doc in pairs:
            room = MAX_LEN - len(q) - 3
            d = self.tok.encode(doc[: room * 8], add_special_tokens=False).ids[:room]
            rows.append(([self.cls, *q, self.sep, *d, self.sep], [0] * (len(q) + 2) + [1] * (len(d) + 1)))
        width = max(len(r[0]) for r in rows)
        ids, types, mask = (self.torch.zeros(len(rows), width, dtype=self.torch.long) for _ in range(3))
        for i, (a, t) in enumerate(rows):
            ids[i, : len(a)] = self.torch.tensor(a)
            types[i, : len(t)] = self.torch.tensor(t)
            mask[i, : len(a)] = 1
        return ids, mask, types


def cross_encoder(torch: Any) -> Any:
    """MiniLM-L6 with its sentence-embedding weights, mean-pooled, and a linear score head."""
    transformers = importlib.import_module("transformers")
    safetensors = importlib.import_module("safetensors.torch")

    class CrossEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            config = transformers.BertConfig(
                vocab_size=30522,
                hidden_size=384,
                num_hidden_layers=6,
                num_attention_heads=12,
                intermediate_size=1536,
                max_position_embeddings=512,
                type_vocab_size=2,
            )
            self.bert = transformers.BertModel(config, add_pooling_layer=False)
            state = safetensors.load_file(str(model_dir() / "model.safetensors"))
            state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
            self.bert.load_state_dict(state, strict=False)
            self.head = torch.nn.Linear(384, 1)

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            m = mask.unsqueeze(-1).float()
            return self.head((hidden * m).sum(1) / m.sum(1).clamp(min=1)).squeeze(-1)

    return CrossEncoder()


def load_groups(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        g = json.loads(line)
        if g["pos"] and len(g["hard"]) + len(g["lex"]) + len(g["rand"]) >= 3:
            out.append({**g, "q": ce_query(g["q"])})
    return out


def sample(g: dict[str, Any], rng: random.Random, negatives: int) -> list[str]:
    """One positive, then negatives: same-file units first, then lexical ones, then any."""
    picked = rng.sample(g["hard"], min(max(1, negatives // 3), len(g["hard"])))
    picked += rng.sample(g["lex"], min(max(1, negatives // 2), len(g["lex"])))
    rest = [x for x in g["hard"] + g["lex"] + g["rand"] if x not in picked]
    rng.shuffle(rest)
    return [rng.choice(g["pos"]), *(picked + rest)[:negatives]]


def validation_mrr(model: Any, enc: Encoder, groups: list[dict[str, Any]]) -> float:
    torch, rng, ranks = enc.torch, random.Random(1), []
    model.eval()
    with torch.no_grad():
        for g in groups:
            q = enc.query(g["q"])
            scores = model(*enc.batch([(q, d) for d in sample(g, rng, 7)]))
            ranks.append(1.0 / (1 + int((scores > scores[0]).sum())))
    model.train()
    return statistics.fmean(ranks)


def train_command(args: argparse.Namespace) -> None:
    torch = _torch()
    torch.manual_seed(0)
    rng = random.Random(0)
    groups = load_groups(args.pairs)
    rng.shuffle(groups)
    held, train = groups[:80], groups[80:]
    enc, model = Encoder(torch), cross_encoder(torch)
    for name, p in model.bert.named_parameters():  # the embeddings and first two layers stay as they are
        if name.startswith(("embeddings.", "encoder.layer.0.", "encoder.layer.1.")):
            p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=4e-5, weight_decay=0.01)
    budget, t0 = args.minutes * 60, time.monotonic()
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 40) * max(0.1, 1 - (time.monotonic() - t0) / budget)
    )
    print(f"{len(train)} training groups, {len(held)} held back; validation MRR {validation_mrr(model, enc, held):.3f}")
    step = 0
    while time.monotonic() - t0 < budget:
        rng.shuffle(train)
        for i in range(0, len(train) - 7, 8):
            batch, sizes = [], []
            for g in train[i : i + 8]:
                docs = sample(g, rng, 3)
                q = enc.query(g["q"])
                batch += [(q, d) for d in docs]
                sizes.append(len(docs))
            scores = model(*enc.batch(batch))
            loss: Any = 0.0
            off = 0
            for n in sizes:  # softmax over each group: the positive first
                target = torch.zeros(1, dtype=torch.long)
                loss = loss + torch.nn.functional.cross_entropy(scores[off : off + n].unsqueeze(0), target)
                off += n
            opt.zero_grad()
            (loss / len(sizes)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 150 == 0:
                print(f"step {step}: validation MRR {validation_mrr(model, enc, held):.3f}", flush=True)
            if time.monotonic() - t0 > budget:
                break
    torch.save(model.state_dict(), args.out)
    print(f"{step} steps; validation MRR {validation_mrr(model, enc, held):.3f}; saved {args.out}")


# --------------------------------------------------------------------------------- candidates and scores


def candidates_command(args: argparse.Namespace) -> None:
    from code_search_replay import candidates, load

    from servers.code_search.search import rank

    tickets = {t["id"]: t for t in (json.loads(x) for x in TICKETS.read_text().splitlines() if x.strip())}
    with args.out.open("w") as fh:
        for rec in load(args.records):
            t = tickets[rec["id"]]
            repo = mirror(t["repo"], args.mirrors)
            cache: dict[str, list[str]] = {}
            for variant in ("raw", "stripped"):
                hits = rank(parse_query(rec[variant]["query"]), candidates(rec, variant), 50)
                files: dict[str, list[dict[str, str]]] = {}
                for h in hits:
                    if h.path not in files and len(files) >= TOP_FILES:
                        continue
                    units = files.setdefault(h.path, [])
                    if len(units) < UNITS_PER_FILE:
                        if h.path not in cache:
                            cache[h.path] = git(repo, "show", f"{t['base_commit']}:{h.path}", check=False).splitlines()
                        body = "\n".join(cache[h.path][h.start_line - 1 : h.end_line])
                        units.append({"symbol": h.symbol, "text": f"{h.symbol} {h.kind} {h.path}\n{body}"})
                row = {
                    "id": t["id"],
                    "repo": t["repo"],
                    "variant": variant,
                    "q": ce_query(rec[variant]["query"]),
                    "gold_files": rec["gold_files"],
                    "gold_functions": rec["gold_functions"],
                    "files": [{"path": p, "units": u} for p, u in files.items()],
                    "funcs": list(dict.fromkeys(f"{h.path}::{h.symbol}" for h in hits)),
                }
                fh.write(json.dumps(row) + "\n")


def fused(first: list[str], second: list[str]) -> list[str]:
    score: dict[str, float] = defaultdict(float)
    for order in (first, second):
        for i, x in enumerate(order):
            score[x] += 1 / (RRF_K + i)
    return sorted(score, key=lambda x: -score[x])


def report(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """File R@5 and function R@10: the shipped ranking, the reranker alone, and the two fused."""
    res: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        shipped = [f["path"] for f in r["files"]]
        best: dict[str, float] = {}
        units: dict[str, float] = {}
        for path, symbol, score in r["unit_scores"]:
            best[path] = max(best.get(path, -1e9), score)
            units[f"{path}::{symbol}"] = score
        reranked = sorted(shipped, key=lambda p: -best.get(p, -1e9))
        gold = set(r["gold_files"])
        by = res[r["variant"]]
        for name, order in (("shipped", shipped), ("reranker", reranked), ("rrf", fused(shipped, reranked))):
            by[f"file_r5 {name}"].append(len(set(order[:5]) & gold) / len(gold))
        if gold_funcs := set(r["gold_functions"]):
            unit_order = sorted(units, key=lambda u: -units[u])
            for name, order in (
                ("shipped", r["funcs"]),
                ("reranker", unit_order),
                ("rrf", fused(r["funcs"], unit_order)),
            ):
                by[f"func_r10 {name}"].append(len(set(order[:10]) & gold_funcs) / len(gold_funcs))
    return {v: {k: round(statistics.fmean(x), 3) for k, x in sorted(m.items())} for v, m in res.items()}


def score_command(args: argparse.Namespace) -> None:
    torch = _torch()
    torch.set_num_threads(2)
    enc, model = Encoder(torch), cross_encoder(torch)
    model.load_state_dict(torch.load(args.model))
    model.eval()
    rows = [json.loads(line) for line in args.cands.read_text().splitlines() if line.strip()]
    took: list[float] = []
    with torch.no_grad():
        for r in rows:
            start = time.perf_counter()
            q = enc.query(r["q"])
            units = [(f["path"], u["symbol"], u["text"]) for f in r["files"] for u in f["units"]]
            scores: list[float] = []
            for i in range(0, len(units), 32):
                scores += model(*enc.batch([(q, text) for _, _, text in units[i : i + 32]])).tolist()
            r["unit_scores"] = [[p, s, x] for (p, s, _), x in zip(units, scores, strict=True)]
            took.append(time.perf_counter() - start)
    out = {"tickets": len(rows) // 2, "seconds_per_ticket_p50": round(statistics.median(took), 2), **report(rows)}
    print(json.dumps(out, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pairs", help="training groups from the dev tickets and the dev repositories' history")
    p.add_argument("--mirrors", type=Path)
    p.add_argument("--per-repo", type=int, default=300)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("train", help="fine-tune the cross-encoder (needs torch and transformers)")
    p.add_argument("pairs", type=Path)
    p.add_argument("--minutes", type=float, default=55)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("candidates", help="the shipped ranking's top files per ticket, from a record")
    p.add_argument("records", type=Path, nargs="+")
    p.add_argument("--mirrors", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("score", help="rerank the candidates and print the figures (needs torch)")
    p.add_argument("model", type=Path)
    p.add_argument("cands", type=Path)
    p.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    {"pairs": pairs_command, "train": train_command, "candidates": candidates_command, "score": score_command}[
        args.command
    ](args)


if __name__ == "__main__":
    main()

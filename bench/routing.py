"""Routing evaluation on the held-out split of bench/data/routing (real tickets from public Go projects).

    python bench/routing.py            # held-out figures (rules, classifier, hard-to-cheap, cost, latency)
    python bench/routing.py --tune     # fit on the dev split only: writes agent/router/data/{examples,knn}.json
    python bench/routing.py --split dev --json out.json

Figures, all on the held-out split unless said otherwise:
  - share of tickets decided by rules, and their precision (rule tier == labelled tier);
  - classifier accuracy (argmax tier == labelled tier) on the tickets no rule decides, against two
    baselines measured in the same run (the nearest-neighbour vote alone, the majority tier), and
    a reliability table (confidence bins: count, mean confidence, accuracy; expected calibration error);
  - hard tickets (labelled strong or human) sent to the cheap tier, by the whole router;
  - expected model cost of the routed tickets against "always strongest", at budgets.yaml list prices;
  - p50/p99 latency of the rules and of the offline classifier (wall and CPU), with the bare
    embedding call as the floor.
Needs the embedding model (`goresolve model install`); the example bank's vectors are cached under
<data dir>/models/router.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import logging
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.llm import PriceBook  # noqa: E402
from agent.policy import load_agent_policy  # noqa: E402
from agent.router.classifier import (  # noqa: E402
    Example,
    KnnClassifier,
    KnnParams,
    feature_row,
    load_examples,
    load_params,
    neighbour_votes,
    row_names,
)
from agent.router.embedder import MiniLM, cached_embed  # noqa: E402
from agent.router.policy import KINDS, RoutingPolicy, load_routing_policy  # noqa: E402
from agent.router.route import Router  # noqa: E402
from agent.router.rules import RuleSet  # noqa: E402
from agent.router.ticket import TicketFacts  # noqa: E402

DATA = ROOT / "bench" / "data" / "routing"
ROUTER_DATA = ROOT / "agent" / "router" / "data"
HARD_TO_CHEAP_TARGET = 0.03


def models_dir() -> Path:
    import os

    import platformdirs

    override = os.environ.get("GORESOLVE_DATA_DIR")
    base = (
        Path(override).expanduser().resolve() if override else platformdirs.user_data_path("goresolve", appauthor=False)
    )
    return base / "models"


def load_split(name: str) -> list[dict[str, Any]]:
    split = json.loads((DATA / "split.json").read_text())["repositories"]
    rows = [json.loads(line) for line in (DATA / "tickets.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if split[r["repo"]] == name]


def facts(row: dict[str, Any]) -> TicketFacts:
    return TicketFacts.of(row["title"], row["body"], key=row["id"], labels=row["labels"])


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# --- tuning (dev split only) ---------------------------------------------------------------------


def out_of_repo_votes(vectors: np.ndarray, rows: list[dict[str, Any]], k: int, temperature: float) -> list[list[float]]:
    """Each dev ticket's neighbour votes among dev tickets of *other* repositories (no self, no sibling)."""
    sims = vectors @ vectors.T
    labels = [r["kind"] for r in rows]
    out = []
    for i, row in enumerate(rows):
        s = sims[i].copy()
        for j, other in enumerate(rows):
            if other["repo"] == row["repo"]:
                s[j] = -np.inf
        votes, _ = neighbour_votes(s.astype(np.float32), labels, k, temperature)
        out.append(votes)
    return out


def tune(policy: RoutingPolicy) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import GroupKFold, cross_val_predict

    dev = load_split("dev")
    embedder = MiniLM.load(models_dir())
    tickets = [facts(r) for r in dev]
    vectors = cached_embed(embedder, [t.text() for t in tickets], models_dir() / "router")
    y = np.asarray([KINDS.index(r["kind"]) for r in dev])
    groups = [r["repo"] for r in dev]
    folds = GroupKFold(n_splits=5)
    best: tuple[float, int, float, float] | None = None
    print("k  temperature  C     out-of-fold log loss")
    for k in (5, 7, 11):
        for temperature in (0.02, 0.05, 0.1):
            votes = out_of_repo_votes(vectors, dev, k, temperature)
            x = np.asarray([feature_row(v, t) for v, t in zip(votes, tickets, strict=True)])
            for c in (0.3, 1.0, 3.0, 10.0, 30.0):
                lr = LogisticRegression(C=c, max_iter=2000)
                proba = cross_val_predict(lr, x, y, groups=groups, cv=folds, method="predict_proba")
                loss = log_loss(y, proba, labels=list(range(len(KINDS))))
                print(f"{k:<2} {temperature:<12} {c:<5} {loss:.4f}")
                if best is None or loss < best[0]:
                    best = (loss, k, temperature, c)
    assert best is not None
    loss, k, temperature, c = best
    votes = out_of_repo_votes(vectors, dev, k, temperature)
    x = np.asarray([feature_row(v, t) for v, t in zip(votes, tickets, strict=True)])
    proba = cross_val_predict(
        LogisticRegression(C=c, max_iter=2000), x, y, groups=groups, cv=folds, method="predict_proba"
    )
    final = LogisticRegression(C=c, max_iter=2000).fit(x, y)
    digest = hashlib.sha256((DATA / "tickets.jsonl").read_bytes()).hexdigest()[:16]
    params = KnnParams(
        embedder=embedder.model_id,
        k=k,
        temperature=temperature,
        kinds=KINDS,
        features=row_names(),
        coef=tuple(tuple(round(float(v), 6) for v in row) for row in final.coef_),
        intercept=tuple(round(float(v), 6) for v in final.intercept_),
        fitted_on={
            "split": "dev",
            "tickets": len(dev),
            "repositories": len(set(groups)),
            "tickets_sha256": digest,
            "C": c,
            "out_of_fold_log_loss": round(loss, 4),
            "calibration": "multinomial logistic regression (log loss) on out-of-repository neighbour votes",
        },
    )
    examples = [
        {"id": r["id"], "url": r["url"], "title": r["title"], "body": r["body"], "kind": r["kind"]} for r in dev
    ]
    # threshold: the lowest whose dev hard-to-cheap rate (whole router, out-of-fold classifier) is zero; the
    # costs are asymmetric (a hard ticket on the cheap tier costs a failed run, a cheap one on the strong tier
    # costs cents), so the cheap tier is given up before a single hard ticket is sent there
    rules = RuleSet(policy)
    hard = [policy.tier_of_kind(r["kind"]) != "small" for r in dev]
    print("threshold  dev hard-to-cheap  dev share routed small")
    recommended = None
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99):
        routed = []
        for t, p in zip(tickets, proba, strict=True):
            rule = rules.first_match(t)
            if rule is not None:
                routed.append(rule.tier)
                continue
            tiers: dict[str, float] = dict.fromkeys(policy.tiers, 0.0)
            for kind, prob in zip(KINDS, p, strict=True):
                tiers[policy.tier_of_kind(kind)] += float(prob)
            top = max(tiers, key=lambda name: tiers[name])
            routed.append(top if top == policy.strongest or tiers[top] >= threshold else policy.strongest)
        h2c = sum(1 for h, r in zip(hard, routed, strict=True) if h and r == "small") / max(1, sum(hard))
        small = sum(1 for r in routed if r == "small") / len(routed)
        print(f"{threshold:<10} {pct(h2c):<18} {pct(small)}")
        if recommended is None and h2c == 0:
            recommended = threshold
    params = params.model_copy(update={"fitted_on": {**params.fitted_on, "recommended_threshold": recommended}})
    (ROUTER_DATA / "examples.json").write_text(json.dumps(examples, indent=1, ensure_ascii=False) + "\n")
    (ROUTER_DATA / "knn.json").write_text(json.dumps(params.model_dump(mode="json"), indent=1) + "\n")
    print(f"chose k={k} temperature={temperature} C={c} (out-of-fold log loss {loss:.4f}); wrote {ROUTER_DATA}")
    print(f"recommended classifier.threshold: {recommended} (routing.yaml has {policy.classifier.threshold})")


# --- evaluation -----------------------------------------------------------------------------------


class Memo:
    """An embedder that computes each distinct text once (for the accuracy figures, not for timing)."""

    def __init__(self, inner: MiniLM) -> None:
        self._inner = inner
        self._seen: dict[str, np.ndarray] = {}

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        for t in texts:
            if t not in self._seen:
                self._seen[t] = self._inner.embed([t])[0]
        return np.stack([self._seen[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def time_each(tickets: list[TicketFacts], fn: Callable[[TicketFacts], object], calls: int) -> dict[str, float]:
    """p50/p99 over tickets of each ticket's median wall and CPU time (ms), and the raw per-call wall p99."""
    wall, cpu, raw = [], [], []
    for t in tickets:
        w, c = [], []
        for _ in range(calls):
            s, s_cpu = time.perf_counter(), time.thread_time()
            fn(t)
            w.append((time.perf_counter() - s) * 1000)
            c.append((time.thread_time() - s_cpu) * 1000)
        wall.append(statistics.median(w))
        cpu.append(statistics.median(c))
        raw += w
    return {
        "p50": percentile(wall, 50),
        "p99": percentile(wall, 99),
        "cpu_p50": percentile(cpu, 50),
        "cpu_p99": percentile(cpu, 99),
        "raw_call_p99": percentile(raw, 99),
        "calls_per_ticket": calls,
    }


def reliability(rows: list[tuple[float, bool]]) -> tuple[list[dict[str, Any]], float]:
    bins = [(0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.0001)]
    table, ece = [], 0.0
    for lo, hi in bins:
        inside = [(c, ok) for c, ok in rows if lo <= c < hi]
        if not inside:
            continue
        conf = statistics.fmean(c for c, _ in inside)
        acc = statistics.fmean(1.0 if ok else 0.0 for _, ok in inside)
        ece += len(inside) / len(rows) * abs(conf - acc)
        table.append({"bin": f"[{lo:.2f}, {min(hi, 1.0):.2f}]", "n": len(inside), "confidence": conf, "accuracy": acc})
    return table, ece


def run_cost(policy: RoutingPolicy, prices: PriceBook, tier: str) -> float:
    model = policy.model_of(tier)
    if model is None:
        return 0.0
    price = prices.price(model)
    run = policy.expected_run
    return run.steps * (run.input_tokens_per_step * price.input + run.output_tokens_per_step * price.output) / 1e6


def evaluate(policy: RoutingPolicy, split: str, repeats: int) -> dict[str, Any]:
    budgets = load_agent_policy().budgets
    prices = PriceBook(budgets)
    rows = load_split(split)
    tickets = [facts(r) for r in rows]
    labels = [policy.tier_of_kind(r["kind"]) for r in rows]
    embedder = MiniLM.load(models_dir())
    examples: list[Example] = load_examples()
    params = load_params()
    if split == "dev":
        print("note: the dev split is what the classifier was fitted on; these figures are optimistic")
    # figures use each ticket's vector once (memoized); the timing below calls the model every time
    memo = Memo(embedder)
    knn = KnnClassifier(memo, examples, params, policy, cache_dir=models_dir() / "router")
    router = Router(policy, knn)
    rules = RuleSet(policy)

    decisions = [asyncio.run(router.decide(t)) for t in tickets]
    predictions = [knn.predict(t) for t in tickets]
    by_rule = [d for d in decisions if d.decided_by == "rule"]
    rule_ok = [d.tier == lab for d, lab in zip(decisions, labels, strict=True) if d.decided_by == "rule"]
    rest = [i for i, d in enumerate(decisions) if d.decided_by != "rule"]
    cls_ok = [predictions[i].tier == labels[i] for i in rest]
    kind_ok = [predictions[i].kind == rows[i]["kind"] for i in rest]
    # baselines in the same run: the neighbour vote alone, and the majority tier of the example bank
    bank_tiers = Counter(policy.tier_of_kind(e.kind) for e in examples)
    majority = bank_tiers.most_common(1)[0][0]
    bank_vectors = cached_embed(embedder, [e.text() for e in examples], models_dir() / "router")
    vote_ok = []
    nearest: list[float] = []  # each no-rule ticket's similarity to its closest example
    for i in rest:
        sims = bank_vectors @ memo.embed([tickets[i].text()])[0]
        nearest.append(float(sims.max()))
        votes, _ = neighbour_votes(sims, [e.kind for e in examples], params.k, params.temperature)
        tiers = dict.fromkeys(policy.tiers, 0.0)
        for kind, v in zip(KINDS, votes, strict=True):
            tiers[policy.tier_of_kind(kind)] += v
        vote_ok.append(max(tiers, key=lambda t: tiers[t]) == labels[i])
    majority_ok = [labels[i] == majority for i in rest]
    med = statistics.median(nearest) if nearest else 0.0

    hard = [lab != "small" for lab in labels]
    hard_to_cheap = [i for i, d in enumerate(decisions) if hard[i] and d.tier == "small"]
    cheap_to_strong = [i for i, d in enumerate(decisions) if not hard[i] and d.tier != "small"]
    confusion = Counter((lab, d.tier) for lab, d in zip(labels, decisions, strict=True))

    # two partial routers measured in the same run: rules alone (unmatched -> strongest), classifier alone
    threshold = policy.classifier.threshold
    rules_only = [d.tier if d.decided_by == "rule" else policy.strongest for d in decisions]
    classifier_only = [
        p.tier if p.tier == policy.strongest or p.confidence >= threshold else policy.strongest for p in predictions
    ]
    partial = {
        name: {
            "hard_to_cheap_rate": sum(1 for h, t in zip(hard, tiers, strict=True) if h and t == "small")
            / max(1, sum(hard)),
            "cost_ratio": sum(run_cost(policy, prices, t) for t in tiers)
            / (len(tiers) * run_cost(policy, prices, policy.strongest)),
            "cheap_share": sum(1 for t in tiers if t == "small") / len(tiers),
        }
        for name, tiers in (("rules_only", rules_only), ("classifier_only", classifier_only))
    }
    routed_cost = sum(run_cost(policy, prices, d.tier) + d.cost_usd for d in decisions)
    strongest_cost = len(decisions) * run_cost(policy, prices, policy.strongest)
    human_as_strongest = sum(
        run_cost(policy, prices, policy.strongest if d.model is None else d.tier) for d in decisions
    )

    # latency. Each ticket is timed `calls` times in a row and its median kept, so one preemption on a
    # shared machine does not become the p99; the p99 is over tickets. Raw per-call wall times are kept too.
    latency: dict[str, dict[str, float]] = {}
    if repeats > 0:
        timed = KnnClassifier(embedder, examples, params, policy, cache_dir=models_dir() / "router")
        gc.disable()
        try:
            latency["rules"] = time_each(tickets, rules.first_match, 20 * repeats)
            latency["classifier"] = time_each(tickets, timed.predict, repeats)
            latency["embedding_only"] = time_each(tickets, lambda t: embedder.embed([t.text()]), repeats)
        finally:
            gc.enable()

    table_rest, ece_rest = reliability([(predictions[i].confidence, cls_ok[n]) for n, i in enumerate(rest)])
    table_all, ece_all = reliability(
        [(p.confidence, p.tier == lab) for p, lab in zip(predictions, labels, strict=True)]
    )
    result: dict[str, Any] = {
        "split": split,
        "tickets": len(rows),
        "repositories": len({r["repo"] for r in rows}),
        "labels": dict(Counter(labels)),
        "rules": {
            "decided": len(by_rule),
            "share": len(by_rule) / len(rows),
            "precision": sum(rule_ok) / max(1, len(rule_ok)),
            "by_rule": dict(Counter(d.rule for d in by_rule)),
            "wrong": [
                {"id": rows[i]["id"], "rule": d.rule, "tier": d.tier, "label": labels[i]}
                for i, d in enumerate(decisions)
                if d.decided_by == "rule" and d.tier != labels[i]
            ],
        },
        "classifier": {
            "tickets": len(rest),
            "accuracy": sum(cls_ok) / max(1, len(cls_ok)),
            "kind_accuracy": sum(kind_ok) / max(1, len(kind_ok)),
            "baseline_vote_accuracy": sum(vote_ok) / max(1, len(vote_ok)),
            "baseline_majority_accuracy": sum(majority_ok) / max(1, len(majority_ok)),
            "majority_tier": majority,
            # how much the accuracy leans on close neighbours: split the no-rule tickets at the median similarity
            "nearest_similarity_median": med,
            "accuracy_near": _share(
                [ok for ok, s in zip(cls_ok, nearest, strict=True) if s >= statistics.median(nearest)]
            ),
            "accuracy_far": _share(
                [ok for ok, s in zip(cls_ok, nearest, strict=True) if s < statistics.median(nearest)]
            ),
            "kind_accuracy_near": _share([ok for ok, s in zip(kind_ok, nearest, strict=True) if s >= med]),
            "kind_accuracy_far": _share([ok for ok, s in zip(kind_ok, nearest, strict=True) if s < med]),
            "accuracy_all_tickets": sum(p.tier == lab for p, lab in zip(predictions, labels, strict=True)) / len(rows),
            "reliability": table_rest,
            "ece": ece_rest,
            "reliability_all_tickets": table_all,
            "ece_all_tickets": ece_all,
            "threshold": policy.classifier.threshold,
            "decided": sum(1 for d in decisions if d.decided_by == "classifier"),
            "fell_back": sum(1 for d in decisions if d.decided_by == "fallback"),
        },
        "router": {
            "hard": sum(hard),
            "hard_to_cheap": len(hard_to_cheap),
            "hard_to_cheap_rate": len(hard_to_cheap) / max(1, sum(hard)),
            "hard_to_cheap_tickets": [rows[i]["id"] for i in hard_to_cheap],
            "cheap_share": sum(1 for d in decisions if d.tier == "small") / len(decisions),
            "cheap_sent_up": len(cheap_to_strong),
            "cheap_sent_up_rate": len(cheap_to_strong) / max(1, len(hard) - sum(hard)),
            "confusion": {f"{a}->{b}": n for (a, b), n in sorted(confusion.items())},
        },
        "partial_routers": partial,
        "cost": {
            "per_run": {t: run_cost(policy, prices, t) for t in policy.tiers},
            "routed_usd": routed_cost,
            "always_strongest_usd": strongest_cost,
            "ratio": routed_cost / strongest_cost,
            "ratio_human_priced_as_strongest": human_as_strongest / strongest_cost,
        },
        "latency_ms": latency,
    }
    return result


def report(r: dict[str, Any]) -> None:
    rules, cls, router, cost = r["rules"], r["classifier"], r["router"], r["cost"]
    print(f"split {r['split']}: {r['tickets']} tickets from {r['repositories']} repositories, tiers {r['labels']}")
    print(f"rules decided {rules['decided']}/{r['tickets']} ({pct(rules['share'])}), by rule {rules['by_rule']}")
    for w in rules["wrong"]:
        print(f"  rule {w['rule']} sent {w['id']} to {w['tier']} (labelled {w['label']})")
    print(
        f"classifier on the {cls['tickets']} tickets no rule decides: tier accuracy {pct(cls['accuracy'])} "
        f"(kind {pct(cls['kind_accuracy'])}); baselines: neighbour vote alone {pct(cls['baseline_vote_accuracy'])}, "
        f"majority tier '{cls['majority_tier']}' {pct(cls['baseline_majority_accuracy'])}; "
        f"on all {r['tickets']} tickets {pct(cls['accuracy_all_tickets'])}"
    )
    print(
        f"  by closeness of the nearest example (median similarity {cls['nearest_similarity_median']:.3f}): "
        f"tier accuracy {pct(cls['accuracy_near'])} at or above, {pct(cls['accuracy_far'])} below "
        f"(kind {pct(cls['kind_accuracy_near'])} / {pct(cls['kind_accuracy_far'])})"
    )
    print(f"  threshold {cls['threshold']}: {cls['decided']} decided by the classifier, {cls['fell_back']} fell back")
    for name, table, ece in (
        ("no-rule tickets", cls["reliability"], cls["ece"]),
        ("all tickets", cls["reliability_all_tickets"], cls["ece_all_tickets"]),
    ):
        print(f"  reliability ({name}), ECE {ece:.3f}")
        print("    bin            n   confidence  accuracy")
        for row in table:
            print(f"    {row['bin']:<14} {row['n']:<3} {row['confidence']:.3f}       {row['accuracy']:.3f}")
    print(
        f"hard tickets to the cheap tier: {router['hard_to_cheap']}/{router['hard']} "
        f"({pct(router['hard_to_cheap_rate'])}; target <= {pct(HARD_TO_CHEAP_TARGET)}) "
        f"{router['hard_to_cheap_tickets']}"
    )
    print(
        f"cheap tickets sent up: {router['cheap_sent_up']} ({pct(router['cheap_sent_up_rate'])}); "
        f"confusion {router['confusion']}"
    )
    print(
        f"expected model cost: routed ${cost['routed_usd']:.2f} "
        f"vs always-strongest ${cost['always_strongest_usd']:.2f} "
        f"(ratio {cost['ratio']:.3f}; {cost['ratio_human_priced_as_strongest']:.3f} if human tickets were priced "
        f"as strongest); per run { ({k: round(v, 4) for k, v in cost['per_run'].items()}) }"
    )
    print(f"  whole router: cheap share {pct(router['cheap_share'])}")
    for name, part in r["partial_routers"].items():
        print(
            f"  {name.replace('_', ' ')}: hard-to-cheap {pct(part['hard_to_cheap_rate'])}, "
            f"cost ratio {part['cost_ratio']:.3f}, cheap share {pct(part['cheap_share'])}"
        )
    for name, lat in r["latency_ms"].items():
        print(
            f"latency {name} (ms, over tickets of each one's median of {lat['calls_per_ticket']} calls): "
            f"wall p50 {lat['p50']:.3f} p99 {lat['p99']:.3f}; CPU p50 {lat['cpu_p50']:.3f} p99 {lat['cpu_p99']:.3f}; "
            f"raw per-call wall p99 {lat['raw_call_p99']:.3f}"
        )
    print(f"routing hard-to-cheap: {100 * router['hard_to_cheap_rate']:.1f}%")
    print(f"routing rule precision: {100 * rules['precision']:.1f}%")
    print(f"routing classifier accuracy: {100 * cls['accuracy']:.1f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune", action="store_true", help="fit on the dev split and write agent/router/data")
    parser.add_argument("--split", choices=("heldout", "dev"), default="heldout")
    parser.add_argument("--repeats", type=int, default=3, help="timing passes over the split (0: no timing)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    # one log line per routed ticket is what a run wants; a benchmark wants only its figures
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    policy = load_routing_policy(ROOT / "policies", load_agent_policy().budgets)
    if args.tune:
        tune(policy)
        return 0
    result = evaluate(policy, args.split, args.repeats)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

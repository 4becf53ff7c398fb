"""bench/ticket_localization.py end to end on a small Go repository made here (two commits, two tickets)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.code_search.conftest import commit_all, git

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


FILES = {
    "net.go": "package widgets\n\n// Dial opens a socket connection with a connect timeout.\n"
    "func Dial(addr string) error {\n\treturn connectWithTimeout(addr)\n}\n\n"
    "func connectWithTimeout(addr string) error {\n\treturn nil\n}\n",
    "store.go": "package widgets\n\n// Save writes the record to disk.\n"
    "func Save(record string) error {\n\treturn nil\n}\n",
    "zzz.go": "package widgets\n\n// Quux does nothing in particular.\nfunc Quux() int {\n\treturn 1\n}\n",
}
# Five more files that share every word of the second ticket, so that its gold file (zzz.go) is
# ranked sixth by BM25 over whole files: file recall@5 is exactly 0 there.
for i in range(5):
    FILES[f"decoy{i}.go"] = (
        f"package widgets\n\n// Decoy{i} parses the yaml config loader values.\n"
        f'func Decoy{i}(yaml string) string {{\n\treturn yaml + "config loader"\n}}\n'
    )


def _widgets(mirrors: Path) -> Path:
    """A git repository of FILES in `mirrors` (not committed yet)."""
    root = mirrors / "acme+widgets"
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for name, text in FILES.items():
        (root / name).write_text(text)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, list[str]]:
    mirrors = tmp_path / "mirrors"
    root = _widgets(mirrors)
    first = commit_all(root, "initial")
    (root / "store.go").write_text(
        FILES["store.go"] + '\n// Load reads the record back.\nfunc Load() string {\n\treturn ""\n}\n'
    )
    second = commit_all(root, "add Load")
    return mirrors, [first, second]


def ticket(n: int, base: str, query: str, files: list[str], funcs: list[str]) -> dict[str, object]:
    return {
        "id": f"widgets#{n}",
        "repo": "acme/widgets",
        "split": "dev" if n == 1 else "heldout",
        "issue": n,
        "time": 1_700_000_000 + n,
        "base_commit": base,
        "query_raw": query,
        "query": query.replace("Dial", ""),
        "gold_files": files,
        "gold_functions": funcs,
    }


def test_metrics_on_a_hand_checked_repository(tmp_path: Path, repo: tuple[Path, list[str]]) -> None:
    bench = load("ticket_localization")
    mirrors, commits = repo
    tickets = tmp_path / "tickets.jsonl"
    rows = [
        ticket(
            1,
            commits[0],
            "Dial fails: socket connect timeout when the connection is slow",
            ["net.go"],
            ["net.go::widgets.Dial", "store.go::widgets.Missing"],
        ),
        ticket(2, commits[1], "yaml config loader values are wrong", ["zzz.go"], ["zzz.go::widgets.Quux"]),
    ]
    tickets.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "results.json"
    result = bench.main(
        [
            "--tickets",
            str(tickets),
            "--mirrors",
            str(mirrors),
            "--db",
            str(tmp_path / "db"),
            "--embedder",
            "hashing",
            "--out",
            str(out),
        ]
    )
    assert json.loads(out.read_text())["tickets"] == 2
    by_id = {r["id"]: r for r in result["per_ticket"]}
    one, two = by_id["widgets#1"], by_id["widgets#2"]
    for variant in ("raw", "stripped"):
        # BM25: net.go is the only file with socket/connect/timeout; zzz.go shares no word with ticket 2.
        assert one[f"{variant}.bm25_files.top_files"][0] == "net.go"
        assert one[f"{variant}.bm25_files.file_r5"] == 1.0
        assert one[f"{variant}.bm25_files.file_mrr10"] == 1.0
        assert two[f"{variant}.bm25_files.file_r5"] == 0.0
        # One of the two gold functions does not exist: recall@10 is at most 1/2; Dial is found.
        assert one[f"{variant}.bm25_files.func_r10"] == 0.5
        # code-search finds net.go for the socket ticket through its full-text list.
        assert one[f"{variant}.code_search.file_r5"] == 1.0
        assert one[f"{variant}.code_search.func_r10"] == 0.5
    summary = result["summary"]
    assert summary["all"]["tickets"] == 2
    assert summary["dev"]["tickets"] == 1 and summary["heldout"]["tickets"] == 1
    # The mean over both tickets: (1 + 0) / 2.
    assert summary["all"]["raw"]["bm25_files"]["file_r5"] == 0.5
    assert summary["heldout"]["raw"]["bm25_files"]["file_r5"] == 0.0
    assert set(result["latency_ms"]) == {"code_search", "code_search_funcs", "bm25_files"}
    assert result["complete"] is True  # every selected repository finished
    assert "| identifiers removed | file recall@5 |" in bench.table("all", summary["all"])


def test_recall_and_rank_helpers() -> None:
    bench = load("ticket_localization")
    assert bench.recall(["a", "b", "c"], ["c", "d"], 2) == 0.0
    assert bench.recall(["a", "b", "c"], ["c", "d"], 3) == 0.5
    assert bench.reciprocal_rank(["a", "b", "c"], ["c"]) == pytest.approx(1 / 3)
    assert bench.reciprocal_rank(["a"], ["z"]) == 0.0
    assert bench.words("parseHTTP_header(x)") == ["parsehttp_header", "x"]


def test_a_replay_of_the_recorded_lists_gives_the_live_figures(tmp_path: Path, repo: tuple[Path, list[str]]) -> None:
    bench = load("ticket_localization")
    replay = load("code_search_replay")
    mirrors, commits = repo
    tickets = tmp_path / "tickets.jsonl"
    long_ticket = (
        "Dial hangs when the socket cannot connect\n\n### Steps to reproduce\n\n```\n$ widgets dial 10.0.0.1\n"
        'level=error msg="connect timeout"\n```\n\nThe connection never times out; Save is not reached.'
    )
    rows = [
        ticket(1, commits[0], long_ticket, ["net.go"], ["net.go::widgets.Dial"]),
        ticket(2, commits[1], "yaml config loader values are wrong", ["zzz.go"], ["zzz.go::widgets.Quux"]),
    ]
    tickets.write_text("".join(json.dumps(r) + "\n" for r in rows))
    record = tmp_path / "record.jsonl"
    args = ["--tickets", str(tickets), "--mirrors", str(mirrors), "--db", str(tmp_path / "db"), "--embedder", "hashing"]
    result = bench.main([*args, "--out", str(tmp_path / "out.json"), "--record", str(record)])
    recorded = replay.load([record])
    assert [r["id"] for r in recorded] == ["widgets#1", "widgets#2"]
    assert recorded[0]["paths"] == sorted(FILES)  # the commit's files, for file-level analyses
    live = {r["id"]: r for r in result["per_ticket"]}
    for r in recorded:
        for variant in ("raw", "stripped"):
            files, _ = replay.ranked(r, variant, replay.rank)
            assert files[:5] == live[r["id"]][f"{variant}.code_search.top_files"]
            replayed = replay.score(r, variant, replay.rank)
            assert replayed["file_r5"] == live[r["id"]][f"{variant}.code_search.file_r5"]
            assert replayed["func_r10"] == live[r["id"]][f"{variant}.code_search.func_r10"]
            assert replayed["bm25_file_r5"] == live[r["id"]][f"{variant}.bm25_files.file_r5"]
    summary = replay.evaluate(recorded, replay.rank)
    assert summary["stripped"]["tickets"] == 2


def test_include_tests_indexes_the_tests_and_keeps_the_baseline_on_code(tmp_path: Path) -> None:
    bench = load("ticket_localization")
    replay = load("code_search_replay")
    mirrors = tmp_path / "mirrors"
    root = _widgets(mirrors)
    (root / "net_test.go").write_text(
        "package widgets\n\n// TestDialTimeout checks the socket connect timeout of a slow connection.\n"
        'func TestDialTimeout(t *testing.T) {\n\tif Dial("10.0.0.1") != nil {\n\t\tt.Fatal("socket")\n\t}\n}\n'
    )
    base = commit_all(root, "initial")
    tickets = tmp_path / "tickets.jsonl"
    query = "Dial fails: socket connect timeout when the connection is slow"
    tickets.write_text(json.dumps(ticket(1, base, query, ["net.go"], ["net.go::widgets.Dial"])) + "\n")
    record = tmp_path / "record.jsonl"
    args = ["--tickets", str(tickets), "--mirrors", str(mirrors), "--embedder", "hashing", "--record", str(record)]
    bench.main([*args, "--db", str(tmp_path / "db"), "--out", str(tmp_path / "out.json"), "--include-tests"])
    (recorded,) = replay.load([record])
    listed = {h["path"] for hits in recorded["raw"]["lists"].values() for h in hits}
    assert "net_test.go" in listed  # code-search searched the test too
    assert "net_test.go" not in recorded["paths"]  # the baseline reads the code only, as without the flag

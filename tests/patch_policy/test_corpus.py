"""The committed corpus (bench/data/patch_policy): real fixes allowed, every tampering mutation refused."""

from __future__ import annotations

import gzip
import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("patch_policy_corpus", ROOT / "bench" / "patch_policy_corpus.py")
assert spec is not None and spec.loader is not None
corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(corpus)


def rows(kind: str) -> list[dict[str, object]]:
    out = []
    for file in sorted(corpus.DATA.glob(f"{kind}-*.jsonl.gz")):
        with gzip.open(file, "rt", encoding="utf-8") as fh:
            out += [json.loads(line) for line in fh]
    return out


def test_every_tampering_mutation_is_refused() -> None:
    tamper = rows("tamper")
    assert len(tamper) > 200
    missed = [row["id"] for row in tamper if corpus.evaluate(row).allowed]
    assert missed == []


def test_real_fixes_following_the_policy_are_allowed() -> None:
    reviewed = json.loads((corpus.DATA / "reviewed.json").read_text())
    real = [row for row in rows("real") if row["label"] == "compliant"]
    assert len(real) > 80
    refused = {row["id"] for row in real if not corpus.evaluate(row).allowed}
    assert refused <= set(reviewed)
    assert len(refused) <= 5


def test_fixes_that_edit_existing_tests_or_protected_paths_are_refused() -> None:
    for row in rows("real"):
        if row["label"] in ("edits_tests", "protected"):
            assert not corpus.evaluate(row).allowed, row["id"]

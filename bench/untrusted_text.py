"""What jira-read and github-pr spend cleaning one ticket field (`servers.common.untrusted.clean`).

    .venv/bin/python bench/untrusted_text.py [--rounds 9]

The field is real ticket text: the bodies of the ticket-localization set's issues
(bench/data/ticket_loc/tickets.jsonl, as their authors wrote them: templates, logs, stack traces)
joined and cut to 8 KB, 200 KB and 2 MB (the largest field either server accepts). For each size it
times, median CPU time over `--rounds`:

- `clean` as shipped: invisible characters out, credentials looked for in the limit (8,000) plus a
  16 KiB margin, the rest cut;
- baseline: `strip_invisible` alone, the work done before credentials were removed;
- whole field: credentials looked for in all of it, then cut (what `clean` did first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from credentials import redact_credentials
from servers.common.textnorm import strip_invisible
from servers.common.untrusted import clean, truncate

TICKETS = Path(__file__).resolve().parent / "data" / "ticket_loc" / "tickets.jsonl"
SIZES = (8_000, 200_000, 2_000_000)
LIMIT = 8000


def corpus() -> str:
    bodies = [json.loads(line)["query_raw"] for line in TICKETS.read_text(encoding="utf-8").splitlines()]
    return "\n\n".join(bodies)


def cpu_ms(work: Callable[[str], object], field: str, rounds: int) -> float:
    times: list[float] = []
    for _ in range(rounds):
        start = time.process_time()
        work(field)
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def shipped(text: str) -> object:
    return clean(text, LIMIT)


def whole_field(text: str) -> object:
    return truncate(redact_credentials(strip_invisible(text)).strip(), LIMIT)


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU time to clean one ticket field")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    text = corpus()
    while len(text) < max(SIZES):
        text += "\n\n" + text
    print(f"ticket text: {len(TICKETS.read_text().splitlines())} issue bodies; median CPU ms over {args.rounds} rounds")
    print(f"{'field':>10} {'clean':>9} {'strip_invisible alone':>22} {'whole field redacted':>21}")
    for size in SIZES:
        field = text[:size]
        now = cpu_ms(shipped, field, args.rounds)
        base = cpu_ms(strip_invisible, field, args.rounds)
        whole = cpu_ms(whole_field, field, args.rounds)
        print(f"{size:>10,} {now:>9.1f} {base:>22.1f} {whole:>21.1f}")
        print(f"untrusted clean {size} chars: {now:.1f} ms")


if __name__ == "__main__":
    main()

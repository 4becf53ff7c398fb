"""Load: 2,000 deliveries, 10% duplicates, random worker kills (SIGKILL) -> nothing lost, nothing applied twice.

    .venv/bin/python bench/webhook_load.py [--deliveries 2000] [--backend sqlite|redis|both]

Signed pushes go through the real gateway (in process) into the real queue; worker processes apply
an idempotent effect per (repo, commit) and are killed at random moments (tests/workqueue/load.py).
Half the duplicates resend a GUID (refused at the gateway), half resend a commit under a new GUID
(accepted; one effect). Prints `webhook load: N lost, N duplicated of M` per backend.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import logging  # noqa: E402

from tests.workqueue.load import run_load  # noqa: E402
from tests.workqueue.support import redis_server  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--deliveries", type=int, default=2000)
    p.add_argument("--backend", choices=["sqlite", "redis", "both"], default="both")
    args = p.parse_args()
    logging.disable(logging.INFO)  # the gateway logs each enqueue
    backends = ["sqlite", "redis"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            where = str(Path(tmp) / "queue")
            if backend == "redis":
                where = stack.enter_context(redis_server(Path(tmp) / "redis"))
            r = run_load(backend, where, Path(tmp), deliveries=args.deliveries, timeout_s=900, kill_every_s=(0.5, 2.0))
            print(
                f"[{backend}] {r.deliveries} deliveries: {r.accepted} accepted, {r.duplicates_answered} refused as "
                f"duplicate GUIDs, {r.commits} distinct commits; {r.kills} worker kills, {r.runs} handler runs "
                f"({r.runs - r.commits} re-runs after kills or duplicate commits) in {r.seconds:.0f}s"
            )
            print(f"[{backend}] {r.line()}")


if __name__ == "__main__":
    main()

"""Load with duplicates and random worker kills, on both queues: nothing lost, nothing applied twice.

The full 2,000-delivery run is bench/webhook_load.py; this one sends 200 jobs of 20 ms each and kills a
worker 0.1-0.5 s after the workers were last seen running jobs, so that even on an idle machine, where the
whole run takes about 2 s, workers die mid-run (with 5 ms jobs and 0.5-1.5 s it could end before the first kill).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workqueue.load import run_load


@pytest.mark.slow
def test_200_deliveries_with_10_percent_duplicates_and_worker_kills(backend: tuple[str, str], tmp_path: Path) -> None:
    kind, where = backend
    result = run_load(kind, where, tmp_path, deliveries=200, kill_every_s=(0.1, 0.5), timeout_s=120, work_ms=20)
    assert result.kills >= 1, "the run ended before any worker was killed"
    assert result.duplicates_answered == 10  # the same GUID again: refused at the gateway
    assert result.accepted == 190 and result.commits == 180  # same commit, new GUID: accepted, one effect
    assert (result.lost, result.duplicated) == (0, 0), result

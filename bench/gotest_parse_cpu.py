"""CPU time go-test-runner spends reading one `go test -json` stream, as a run reads it.

    .venv/bin/python bench/gotest_parse_cpu.py [--module github.com/gorilla/mux@v1.8.1] [--rounds 50]

Records the stream of one real `go test -json -count=1 ./...` of the module (pinned, from the Go
module proxy). Then feeds it, a 64 KiB read at a time, through what a run does with each line of its
stdout: one decode, the report parser and the census's tracker. (A read boundary splits a line in
two here, which the pump would join: the lines are the same but for those few.) Prints the median
and minimum CPU time per stream over `--rounds`: CPU the server takes from `go` and the test binary
while they run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servers.go_test_runner.runner import stream_readers


def record(module: str) -> bytes:
    info = json.loads(
        subprocess.run(["go", "mod", "download", "-json", module], check=True, capture_output=True).stdout
    )
    with tempfile.TemporaryDirectory(prefix="parse-cpu-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(info["Dir"], src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        proc = subprocess.run(["go", "test", "-json", "-count=1", "./..."], cwd=src, capture_output=True)
    return proc.stdout


def read_once(stream: bytes) -> int:
    """One stream through a run's reading of it (`stream_readers`: per line, one decode, the parser
    and the tracker); the number of lines."""
    parser, _tracker, feed = stream_readers("/src")
    lines = 0
    for at in range(0, len(stream), 65536):  # as the pump gets it: a read's worth of lines at a time
        for raw in stream[at : at + 65536].split(b"\n"):
            lines += 1
            feed(raw.decode("utf-8", errors="replace"))
    parser.finish()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default="github.com/gorilla/mux@v1.8.1")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    stream = record(args.module)
    samples, lines = [], 0
    for _ in range(args.rounds + 5):
        start = time.process_time()
        lines = read_once(stream)
        samples.append((time.process_time() - start) * 1000)
    samples = samples[5:]
    print(f"{args.module}: {lines} lines, {len(stream)} bytes")
    print(
        f"CPU per stream: median {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms ({args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# `demo wall time`: README command one on a fresh clone, timed from the end of the install to the summary.
#
#   bash bench/demo_fresh_clone.sh [REPOSITORY]      (default: this checkout; a URL works too)
#
# Clones into a temporary directory with its own GORESOLVE_DATA_DIR (no model, no runner cache, no
# index: what a newcomer has), runs `pip install -e .` (the install), then times `goresolve model install
# && goresolve demo` and checks that both outcomes were shown. The Go toolchain's own build cache
# (`go env GOCACHE`) is the machine's: go-test-runner reads it as a lower layer, as it would on any host.
set -euo pipefail
SRC=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
WORK=$(mktemp -d -t goresolve-fresh-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
git clone -q "$SRC" "$WORK/goresolve"
cd "$WORK/goresolve"
export GORESOLVE_DATA_DIR="$WORK/data"
nproc_now=$(nproc)
load_before=$(cut -d' ' -f1 /proc/loadavg)
t0=$(date +%s.%N)
python3 -m venv .venv && .venv/bin/pip install -q -e .
t1=$(date +%s.%N)
.venv/bin/goresolve model install && .venv/bin/goresolve demo 2>&1 | tee "$WORK/demo.log"
t2=$(date +%s.%N)
grep -q "SVC-101: pull request opened" "$WORK/demo.log" || { echo "no pull request shown" >&2; exit 1; }
grep -q "SVC-102: handed to a human" "$WORK/demo.log" || { echo "no hand-off shown" >&2; exit 1; }
echo "cores: $nproc_now; load average before: $load_before, after: $(cut -d' ' -f1 /proc/loadavg)"
echo "install (venv + pip install -e .): $(python3 -c "print(round($t1 - $t0))") s"
echo "demo wall time: $(python3 -c "print(round($t2 - $t1))") s"

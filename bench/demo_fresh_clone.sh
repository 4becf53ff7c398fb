#!/usr/bin/env bash
# `demo wall time`: README command one on a fresh clone, timed from the end of the install to the summary.
#
#   bash bench/demo_fresh_clone.sh [REPOSITORY]      (default: this checkout; a URL works too)
#   COLD_GOCACHE=1 bash bench/demo_fresh_clone.sh    (also an empty Go build cache: a machine that never built Go)
#
# Clones into a temporary directory with its own GORESOLVE_DATA_DIR (no model, no analyzer, no runner
# cache, no index: what a newcomer has), runs the install (`python3 -m venv`, `pip install -e .`,
# `goresolve model install`: the embedding model and the compiled tamper analyzer), then times
# `goresolve demo` and checks that both outcomes were shown. By default the Go toolchain's own build
# cache (`go env GOCACHE`) is the machine's, as on any host where Go was used before: go-test-runner
# reads it as a lower layer. Each phase is printed with the load average around it.
case "${1:-}" in -h | --help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | grep -v "^set " ; exit 0 ;; esac
set -euo pipefail
SRC=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
WORK=$(mktemp -d -t goresolve-fresh-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
git clone -q "$SRC" "$WORK/goresolve"
cd "$WORK/goresolve"
export GORESOLVE_DATA_DIR="$WORK/data"
if [ "${COLD_GOCACHE:-0}" = 1 ]; then
  export GOCACHE="$WORK/gocache"
fi
load() { cut -d' ' -f1 /proc/loadavg; }
secs() { python3 -c "print(round($2 - $1))"; }
echo "cores: $(nproc); go build cache: $(go env GOCACHE)"
t0=$(date +%s.%N); l0=$(load)
python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e .
t1=$(date +%s.%N); l1=$(load)
.venv/bin/goresolve model install
t2=$(date +%s.%N); l2=$(load)
.venv/bin/goresolve demo 2>&1 | tee "$WORK/demo.log"
t3=$(date +%s.%N); l3=$(load)
grep -q "SVC-101: pull request opened" "$WORK/demo.log" || { echo "no pull request shown" >&2; exit 1; }
grep -q "SVC-102: handed to a human" "$WORK/demo.log" || { echo "no hand-off shown" >&2; exit 1; }
echo "load average: $l0 before the install, $l1 after pip, $l2 after model install, $l3 after the demo"
echo "install: venv + pip install -e . $(secs "$t0" "$t1") s; goresolve model install $(secs "$t1" "$t2") s"
echo "demo wall time: $(secs "$t2" "$t3") s"

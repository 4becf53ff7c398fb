#!/usr/bin/env bash
# Install GitHub's REST description (@octokit/openapi, pinned) for the github-pr fake's contract checks.
# Idempotent and cached under .goresolve/cache/ (or $GORESOLVE_OCTOKIT_CACHE). CI calls it before pytest.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" -m tests.fakes.github.spec

#!/usr/bin/env bash
# Install GitHub's webhook schemas (@octokit/openapi-webhooks, pinned) for the gateway's payload tests.
# Idempotent and cached under .goresolve/cache/ (or $GORESOLVE_OCTOKIT_WEBHOOKS_CACHE).
case "${1:-}" in -h | --help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | grep -v "^set " ; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" -m tests.webhooks.schemas

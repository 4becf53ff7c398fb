#!/usr/bin/env bash
# Install GitHub's webhook schemas (@octokit/openapi-webhooks, pinned) for the gateway's payload tests.
# Idempotent and cached under .goresolve/cache/ (or $GORESOLVE_OCTOKIT_WEBHOOKS_CACHE).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" -m tests.webhooks.schemas

#!/usr/bin/env bash
# Tools for the chart checks (tests/charts) and the dispatcher's API-server tests (tests/kube), built
# from the Go module proxy and cached by version: Helm v4, and kube-apiserver + etcd. Idempotent:
# a second run with the same versions builds nothing.
case "${1:-}" in -h | --help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | grep -v "^set " ; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== kube tools (helm, kube-apiserver, etcd; cached by version)"
bash scripts/install-helm.sh
bash scripts/build-kube.sh

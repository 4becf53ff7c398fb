#!/usr/bin/env bash
# Install Helm v4 from the Go module proxy (`go install`), cached by version, and print the binary's path:
#   ${GORESOLVE_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/goresolve}/helm/<version>/helm
# The chart checks (tests/charts/) run that binary; a second run with the same version builds nothing.
case "${1:-}" in -h | --help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | grep -v "^set " ; exit 0 ;; esac
set -euo pipefail

HELM_VERSION=v4.3.2
cache_root=${GORESOLVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/goresolve}/helm
out="$cache_root/$HELM_VERSION"
mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
# Bounded waits (the lock, the build): a stalled download fails CI instead of holding it.
flock -w 1800 9
if [ ! -x "$out/helm" ]; then
  echo "installing helm $HELM_VERSION into $out (cached afterwards)" >&2
  rm -rf "$out.tmp"
  # Run outside the project so its go.mod/go.work cannot interfere.
  (cd "$cache_root" && GOBIN="$out.tmp" CGO_ENABLED=0 GOFLAGS= timeout "${GORESOLVE_KUBE_BUILD_TIMEOUT_S:-1800}" go install -trimpath -ldflags "-s -w" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
  rm -rf "$out"
  mv "$out.tmp" "$out"
fi
echo "$out/helm"

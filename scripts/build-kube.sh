#!/usr/bin/env bash
# Build a real kube-apiserver and etcd for the dispatcher's API-server tests (tests/kube/), from the
# wrapper Go modules in tests/kube/{apiserver,etcd}, once per version: binaries are cached under
#   ${GORESOLVE_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/goresolve}/kube/<version>-<hash of go.mod+go.sum>/
# and the script prints that directory. A second run with the same modules builds nothing.
# The kube-apiserver build takes several minutes on 2 cores; everything else reuses it.
# Each build is bounded by GORESOLVE_KUBE_BUILD_TIMEOUT_S seconds (default 2400; Helm's 1800).
case "${1:-}" in -h | --help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | grep -v "^set " ; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSION=v1.34.2
ETCD_VERSION=$(sed -n "s|^.*go.etcd.io/etcd/server/v3 \(v[0-9.]*\).*|\1|p" tests/kube/etcd/go.mod | head -1)
cache_root=${GORESOLVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/goresolve}/kube
key=$(cat tests/kube/apiserver/go.mod tests/kube/apiserver/go.sum tests/kube/apiserver/main.go \
  tests/kube/etcd/go.mod tests/kube/etcd/go.sum tests/kube/etcd/main.go | sha256sum | cut -c1-12)
out="$cache_root/$KUBE_VERSION-etcd-$ETCD_VERSION-$key"
mkdir -p "$cache_root"

build() {
  local dir=$1 name=$2 ldflags=$3
  if [ ! -x "$out/$name" ]; then
    echo "building $name into $out (cached afterwards)" >&2
    mkdir -p "$out.tmp"
    # Bounded: a build that hangs (a stalled download) fails CI instead of holding it.
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly timeout "${GORESOLVE_KUBE_BUILD_TIMEOUT_S:-2400}" go build -trimpath -ldflags "$ldflags" \
      -o "$out.tmp/$name" .)
    mkdir -p "$out"
    mv "$out.tmp/$name" "$out/$name"
  fi
}

# One build at a time per cache directory (parallel test sessions share it).
exec 9>"$cache_root/.lock"
flock -w 3600 9
build tests/kube/etcd etcd "-s -w"
# Without gitVersion the server reports v0.0.0-master and clients cannot parse its version.
build tests/kube/apiserver kube-apiserver "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
rmdir "$out.tmp" 2>/dev/null || true
echo "$out"

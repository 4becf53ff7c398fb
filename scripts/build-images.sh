#!/usr/bin/env bash
# Build the container images with Debian's buildah (vfs storage, as root), without any registry:
# the Python base is made from Debian packages by debootstrap (deb.debian.org), the Go toolchain is
# the local one (the version go-test-runner pins), and dependencies come from PyPI. Prints
# "<image>: <size>" per image (as `buildah images` reports it, uncompressed).
#
#   sudo bash scripts/build-images.sh [jira-read code-search github-pr go-test-runner agent]
#
# The Dockerfiles' default bases (docker.io/library/python, golang) are used by a normal registry
# build; here they are replaced through --build-arg, which is all the Dockerfiles need. Sizes
# include the Debian base (python3 from bookworm, about 270 MB uncompressed under vfs).
case "${1:-}" in -h | --help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0" | grep -v "^set " ; exit 0 ;; esac
set -euo pipefail
cd "$(dirname "$0")/.."

images=("$@")
[ ${#images[@]} -gt 0 ] || images=(jira-read github-pr go-test-runner code-search agent)
work=${GORESOLVE_IMAGE_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/goresolve/images}
mkdir -p "$work"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
buildah() { command buildah --storage-driver vfs "$@"; }

if ! buildah inspect --type image localhost/goresolve-base:bookworm >/dev/null 2>&1; then
  if [ ! -x "$work/rootfs/usr/bin/python3" ]; then
    rm -rf "$work/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
      bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log"
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  fi
  c=$(buildah from scratch)
  buildah copy "$c" "$work/rootfs" / >/dev/null
  buildah config --env PATH=/usr/local/bin:/usr/bin:/bin --cmd '["/bin/bash"]' "$c"
  buildah commit --rm "$c" localhost/goresolve-base:bookworm >/dev/null
fi
if ! buildah inspect --type image localhost/goresolve-go:local >/dev/null 2>&1; then
  goroot=$(go env GOROOT)
  c=$(buildah from localhost/goresolve-base:bookworm)
  buildah copy "$c" "$goroot" /usr/local/go >/dev/null
  buildah config --env PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin "$c"
  buildah commit --rm "$c" localhost/goresolve-go:local >/dev/null
fi

# A build host behind a TLS-inspecting proxy: its CA bundle and pip configuration are mounted into
# the RUN steps only (never copied into a layer), so pip trusts what the host trusts.
mounts=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && mounts+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
[ -f /etc/pip.conf ] && mounts+=(--volume /etc/pip.conf:/etc/pip.conf:ro)

for image in "${images[@]}"; do
  buildah build --quiet --layers=false "${mounts[@]}" \
    --build-arg PYTHON_IMAGE=localhost/goresolve-base:bookworm \
    --build-arg GO_IMAGE=localhost/goresolve-go:local \
    -f "docker/$image.Dockerfile" -t "localhost/goresolve/$image:dev" . >"$work/$image.log" 2>&1 \
    || { echo "build of $image failed; last lines of $work/$image.log:" >&2; tail -20 "$work/$image.log" >&2; exit 1; }
  size=$(buildah images --json "localhost/goresolve/$image:dev" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["size"])')
  echo "$image: $size"
done

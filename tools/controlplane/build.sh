#!/usr/bin/env bash
# Builds the control-plane binaries the tests and the demo run (kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd) from the Go module proxy, into a cache
# folder outside git keyed by version, so a second run builds nothing.
#
# Usage: tools/controlplane/build.sh            prints the folder holding the binaries
# Env:   LOCKSTEP_CACHE  cache root (default ~/.cache/lockstep)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/kubernetes/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$here/etcd/go.mod")
cache=${LOCKSTEP_CACHE:-$HOME/.cache/lockstep}
out="$cache/controlplane/kubernetes-$k8s_version-etcd-$etcd_version"
bins=(kube-apiserver kube-controller-manager kube-scheduler etcd)

complete=1
for b in "${bins[@]}"; do [ -x "$out/$b" ] || complete=0; done
if [ "$complete" = 1 ]; then
  echo "$out"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go is needed to build the control plane (https://go.dev/doc/install, 1.26 or newer)" >&2
  exit 1
fi

mkdir -p "$out"
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# -trimpath and no debug info: smaller binaries, and a build that does not depend on the path.
# The version variables are what `make release` would stamp; without them the servers report
# v0.0.0-master and clients print version-skew warnings.
minor=$(echo "$k8s_version" | cut -d. -f2)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
echo "building kubernetes $k8s_version and etcd $etcd_version into $out (a cold build takes a while)" >&2
start=$(date +%s)
(cd "$here/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler)
(cd "$here/etcd" && go build -trimpath -ldflags "$ldflags" -o "$tmp/etcd" .)
# Move into place only once every binary built, so an interrupted build is never taken for a cached one.
for b in "${bins[@]}"; do mv "$tmp/$b" "$out/$b"; done
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$out"

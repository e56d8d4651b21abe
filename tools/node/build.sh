#!/usr/bin/env bash
# Builds what a real test node runs: the kubelet (from the same k8s.io/kubernetes wrapper module as
# the control plane, so both are one release) and containerd 2.x with its runc shim and `ctr`, from
# the Go module proxy, into a cache folder beside the control plane's, keyed by both versions, so a
# second run builds nothing. runc and the CNI plugins come from Debian (.ci/run installs them).
#
# Usage: tools/node/build.sh           builds if needed, prints the folder holding the binaries
#        tools/node/build.sh --cached  prints the folder only if it is complete, else fails saying how to build
# Env:   LOCKSTEP_CACHE  cache root (default ~/.cache/lockstep)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kubernetes_module="$here/../controlplane/kubernetes"

k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$kubernetes_module/go.mod")
containerd_version=$(awk '$1 == "require" && $2 == "github.com/containerd/containerd/v2" {print $3}' "$here/containerd/go.mod")
cache=${LOCKSTEP_CACHE:-$HOME/.cache/lockstep}
out="$cache/node/kubelet-$k8s_version-containerd-$containerd_version"
bins=(kubelet containerd containerd-shim-runc-v2 ctr)

complete=1
for b in "${bins[@]}"; do [ -x "$out/$b" ] || complete=0; done
if [ "$complete" = 1 ]; then
  echo "$out"
  exit 0
fi
if [ "${1:-}" = "--cached" ]; then
  echo "the kubelet and containerd are not built yet ($out): run \`make controlplane\` (tools/node/build.sh)" >&2
  exit 1
fi

if ! command -v go >/dev/null 2>&1; then
  echo "tools/node/build.sh: Go is needed to build the kubelet and containerd (https://go.dev/doc/install, 1.26 or newer)" >&2
  exit 1
fi

mkdir -p "$out"
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Static binaries without cgo: containerd then lacks only the btrfs snapshotter, which a test node
# does not use (it runs the overlayfs snapshotter).
export CGO_ENABLED=0 GOFLAGS=-mod=mod
minor=$(echo "$k8s_version" | cut -d. -f2)
# Stamped as the control plane stamps its servers: the kubelet reports v1.37.2 in Node.status.nodeInfo.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
containerd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version"
echo "building kubelet $k8s_version and containerd $containerd_version into $out" >&2
start=$(date +%s)
(cd "$kubernetes_module" && go build -trimpath -ldflags "$k8s_ldflags" -o "$tmp/" k8s.io/kubernetes/cmd/kubelet)
(cd "$here/containerd" && go build -trimpath -ldflags "$containerd_ldflags" -o "$tmp/" \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr)
# Move into place only once every binary built, so an interrupted build is never taken for a cached one.
for b in "${bins[@]}"; do mv "$tmp/$b" "$out/$b"; done
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$out"

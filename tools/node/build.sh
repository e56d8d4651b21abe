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
# shellcheck source=../lib.sh
source "$here/../lib.sh"
containerd_version=$(awk '$1 == "require" && $2 == "github.com/containerd/containerd/v2" {print $3}' "$here/containerd/go.mod")
out="$cache/node/kubelet-$k8s_version-containerd-$containerd_version"
bins=(kubelet containerd containerd-shim-runc-v2 ctr)

exit_if_built "$out" "${bins[@]}"
if [ "${1:-}" = "--cached" ]; then
  echo "the kubelet and containerd are not built yet ($out): run \`make controlplane\` (tools/node/build.sh)" >&2
  exit 1
fi

require_go "the kubelet and containerd"
build_dir "$out"
# Static binaries without cgo: containerd then lacks only the btrfs snapshotter, which a test node
# does not use (it runs the overlayfs snapshotter).
export CGO_ENABLED=0 GOFLAGS=-mod=mod
containerd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version"
echo "building kubelet $k8s_version and containerd $containerd_version into $out" >&2
start=$(date +%s)
if wanted kubelet; then
  build_step kubelet "$kubernetes_module" go build -trimpath -ldflags "$k8s_ldflags" -o "$tmp/" k8s.io/kubernetes/cmd/kubelet
fi
for cmd in containerd containerd-shim-runc-v2 ctr; do
  wanted "$cmd" || continue
  build_step "$cmd" "$here/containerd" go build -trimpath -ldflags "$containerd_ldflags" -o "$tmp/" \
    "github.com/containerd/containerd/v2/cmd/$cmd"
done
for b in "${missing[@]}"; do mv "$tmp/$b" "$out/$b"; done
rm -f "$build_log"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$out"

#!/usr/bin/env bash
# Builds the control-plane binaries the tests and the demo run (kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd) and the kubectl of the same release (it renders
# deploy/'s kustomize overlays; a machine's own kubectl may be missing or versions away) from the Go
# module proxy, into a cache folder outside git keyed by version, so a second run builds nothing.
#
# Usage: tools/controlplane/build.sh            prints the folder holding the binaries
# Env:   LOCKSTEP_CACHE  cache root (default ~/.cache/lockstep)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
source "$here/../lib.sh"

etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$here/etcd/go.mod")
out="$cache/controlplane/kubernetes-$k8s_version-etcd-$etcd_version"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd)

exit_if_built "$out" "${bins[@]}"

require_go "the control plane"
build_dir "$out"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
echo "building kubernetes $k8s_version and etcd $etcd_version into $out (a cold build takes a while)" >&2
start=$(date +%s)
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  wanted "$cmd" || continue
  build_step "$cmd" "$kubernetes_module" go build -trimpath -ldflags "$k8s_ldflags" -o "$tmp/" "k8s.io/kubernetes/cmd/$cmd"
done
if wanted etcd; then build_step etcd "$here/etcd" go build -trimpath -ldflags "$k8s_ldflags" -o "$tmp/etcd" .; fi
for b in "${missing[@]}"; do mv "$tmp/$b" "$out/$b"; done
rm -f "$build_log"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$out"

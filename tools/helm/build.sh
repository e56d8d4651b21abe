#!/usr/bin/env bash
# Builds helm (the chart's tests install, upgrade and uninstall charts/lockstep with it; `make release`
# packages the chart with it) from the Go module proxy, into a cache folder outside git keyed by version,
# so a second run builds nothing. Helm 3: its --post-renderer runs any executable, which the real-node
# tests use to apply the harness's loopback changes (deploy-overlays/test-local) to what helm renders.
#
# Usage: tools/helm/build.sh            prints the path of the helm binary
# Env:   LOCKSTEP_CACHE  cache root (default ~/.cache/lockstep)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
source "$here/../lib.sh"

helm_version=v3.22.1
out="$cache/helm/helm-$helm_version"
if [ -x "$out/helm" ]; then
  echo "$out/helm"
  exit 0
fi

require_go "helm"
build_dir "$out"
export CGO_ENABLED=0
echo "building helm $helm_version into $out" >&2
# The version variable is what helm's own release stamps: without it `helm version` says v3.x-dev and
# a chart's kubeVersion checks see a wrong client.
build_step helm "$tmp" env GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version" "helm.sh/helm/v3/cmd/helm@$helm_version"
mv "$tmp/helm" "$out/helm"
rm -f "$build_log"
echo "$out/helm"

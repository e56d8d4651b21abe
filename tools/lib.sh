# Shared by tools/controlplane/build.sh and tools/node/build.sh (sourced, not run): the Kubernetes
# release both build from, and how its binaries are stamped.
tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kubernetes_module="$tools_dir/controlplane/kubernetes"
# Where built binaries are kept, beside each other, keyed by version.
cache=${LOCKSTEP_CACHE:-$HOME/.cache/lockstep}
k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$kubernetes_module/go.mod")

# -trimpath and no debug info: smaller binaries, and a build that does not depend on the path.
# The version variables are what `make release` would stamp; without them the servers report
# v0.0.0-master, clients print version-skew warnings and a kubelet reports a wrong nodeInfo.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$k8s_version" | cut -d. -f2) -X $pkg.gitTreeState=clean"
done

# require_go WHAT: fails with the install hint when Go is missing.
require_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "Go is needed to build $1 (https://go.dev/doc/install, 1.26 or newer)" >&2
    exit 1
  fi
}

# build_dir OUT: a fresh folder inside OUT, removed on exit; binaries are moved from it into OUT only
# once every one of them built, so an interrupted build is never taken for a cached one.
build_dir() {
  mkdir -p "$1"
  tmp=$(mktemp -d "$1/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
}

# exit_if_built OUT BIN...: prints OUT and exits when every BIN is in it, so a second run builds nothing.
exit_if_built() {
  local out=$1 b
  shift
  for b in "$@"; do [ -x "$out/$b" ] || return 0; done
  echo "$out"
  exit 0
}

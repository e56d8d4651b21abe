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
  build_log="$1.build.log"
  : >"$build_log"
  trap 'rm -rf "$tmp"' EXIT
}

# exit_if_built OUT BIN...: prints OUT and exits when every BIN is in it, so a second run builds nothing;
# otherwise sets `missing` to the BINs to build (a cache from before a binary was added keeps the rest).
exit_if_built() {
  local out=$1 b
  shift
  missing=()
  for b in "$@"; do [ -x "$out/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -gt 0 ] && return 0
  echo "$out"
  exit 0
}

# wanted BIN: whether this run builds BIN (exit_if_built found it missing).
wanted() {
  local b
  for b in "${missing[@]}"; do [ "$b" = "$1" ] && return 0; done
  return 1
}

# build_step WHAT DIR CMD...: runs CMD in DIR as one line of progress ("  kubelet ... 84s"): a cold build
# downloads hundreds of modules, and their "go: downloading" lines would bury what is happening. The
# output goes to $build_log, which is kept, and its end shown, when the step fails.
build_step() {
  local what=$1 dir=$2 start
  shift 2
  start=$(date +%s)
  printf '  %s ... ' "$what" >&2
  if (cd "$dir" && "$@") >>"$build_log" 2>&1; then
    echo "$(($(date +%s) - start))s" >&2
  else
    echo "failed; the whole output is in $build_log" >&2
    tail -n 20 "$build_log" >&2
    return 1
  fi
}

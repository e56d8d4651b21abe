#!/usr/bin/env bash
# Builds actionlint, the linter of GitHub Actions workflows (.github/workflows/), from the Go module
# proxy into a cache folder keyed by its version, so a second run builds nothing. `make lint` runs it
# (it also runs shellcheck on each `run:` script when shellcheck is on PATH).
#
# Usage: tools/actionlint/build.sh   prints the path of the actionlint binary
# Env:   LOCKSTEP_CACHE  cache root (default ~/.cache/lockstep)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
source "$here/../lib.sh"

# Pinned: a newer actionlint may report new findings, which should arrive in a commit, not in a CI run.
actionlint_version=v1.7.12
out="$cache/actionlint-$actionlint_version"

if [ -x "$out/actionlint" ]; then
  echo "$out/actionlint"
  exit 0
fi
require_go "actionlint"
build_dir "$out"
export CGO_ENABLED=0
echo "building actionlint $actionlint_version into $out" >&2
build_step actionlint "$here" env GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
  "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
mv "$tmp/actionlint" "$out/actionlint"
rm -f "$build_log"
echo "$out/actionlint"

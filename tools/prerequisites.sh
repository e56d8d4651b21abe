#!/usr/bin/env bash
# The Debian packages `make test`, `make demo` and CI need, checked in the first second: as root they
# are installed (one line says which); otherwise this stops with the exact line to run. One list for
# all three (.ci/run calls this too). `tools/prerequisites.sh bench` adds what only `make bench` needs.
set -euo pipefail

# command-or-file:package. A command is looked up on PATH and in /usr/sbin (apparmor_parser, runc).
needs=(
  runc:runc
  busybox:busybox-static
  apparmor_parser:apparmor
  strace:strace
  openssl:openssl
  setpriv:util-linux
  gcc:gcc
  # Real test nodes: the CNI loopback plugin, and a static libc for the pause program (gcc -static).
  /usr/lib/cni/loopback:containernetworking-plugins
  /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev
  # The webhook runs as it ships, with jemalloc preloaded (scripts/build.ts).
  /usr/lib/x86_64-linux-gnu/libjemalloc.so.2:libjemalloc2
  # A kernel with AppArmor for the tests that load profiles: User-Mode Linux, no KVM needed
  # (docs/adr/0028-real-apparmor-kernel.md; 41 MB download, 116 MB installed, 7-14 s to install).
  /usr/bin/linux.uml:user-mode-linux
  # Its network to the host's loopback (the plain slirp build passes no traffic to it).
  /usr/bin/slirp-fullbolt:slirp
)
if [ "${1:-}" = bench ]; then
  # The webhook benchmark's load generator, and the core pinning that keeps it off the webhook's core.
  needs+=(wrk:wrk taskset:util-linux)
fi
missing=()
for pair in "${needs[@]}"; do
  what=${pair%%:*}
  if [[ $what == /* ]]; then
    [ -e "$what" ] || missing+=("${pair##*:}")
  else
    command -v "$what" >/dev/null 2>&1 || [ -x "/usr/sbin/$what" ] || missing+=("${pair##*:}")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$EUID" -ne 0 ]; then
  echo "missing Debian packages; install them, then run make again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null

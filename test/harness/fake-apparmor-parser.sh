#!/usr/bin/env bash
# Stands in for the kernel half of `apparmor_parser` on machines whose kernel has no AppArmor: the
# policy is compiled by the REAL apparmor_parser (-Q: parse and compile, do not load), and, when that
# succeeds, the profile names are added to (or, for --remove, taken from) a fake securityfs profile
# list, which the agent reads back exactly as it reads the kernel's.
# Usage: FAKE_SECURITYFS=<dir> fake-apparmor-parser.sh --replace|--remove FILE
set -euo pipefail
mode=$1 file=$2
profiles="$FAKE_SECURITYFS/apparmor/profiles"
parser=$(command -v apparmor_parser || echo /usr/sbin/apparmor_parser)
if [ "$mode" = "--replace" ]; then
  # The parser's note that it cannot cache without a kernel interface is noise here.
  if ! out=$("$parser" -Q -K "$file" 2>&1); then
    grep -v 'Cache read/write disabled' <<<"$out" >&2
    exit 1
  fi
fi
names=$("$parser" -N "$file" 2>/dev/null)
for name in $names; do
  { grep -vxF -e "$name (enforce)" -e "$name (complain)" "$profiles" || true; } > "$profiles.new"
  mv "$profiles.new" "$profiles"
  if [ "$mode" = "--replace" ]; then
    if grep -qE "^\s*profile\s+$name\s.*complain" "$file"; then
      echo "$name (complain)" >> "$profiles"
    else
      echo "$name (enforce)" >> "$profiles"
    fi
  fi
done

#!/usr/bin/env bash
# Stands in for the kernel half of `apparmor_parser` on machines whose kernel has no AppArmor. Every
# run that only reads policy (--preprocess, --stdout compiles) is the REAL apparmor_parser, unchanged.
# Loading and removing, which need a kernel, go to a fake securityfs profile list that the agent reads
# back exactly as it reads the kernel's:
#   --replace --binary FILE  the names and modes are read from the compiled policy the agent judged
#                            (fake-kernel-load.ts, with the agent's own reader of that format)
#   --remove FILE            the names are the real parser's (-N)
# With FAKE_PARSER_LOG set, each run appends a line to that file: the SHA-256 of the policy file it was
# given (its last argument) and its arguments, so a test can count the runs on one policy.
# Usage: FAKE_SECURITYFS=<dir> LOCKSTEP_TEST_NODE=<node binary> fake-apparmor-parser.sh ARGS...
set -euo pipefail
parser=$(command -v apparmor_parser || echo /usr/sbin/apparmor_parser)
if [ -n "${FAKE_PARSER_LOG:-}" ]; then
  policy_hash=$({ { sha256sum < "${!#}"; } 2>/dev/null || echo -; } | cut -d' ' -f1)
  printf '%s %s\n' "$policy_hash" "$*" >> "$FAKE_PARSER_LOG"
fi
profiles="$FAKE_SECURITYFS/apparmor/profiles"
case "$*" in
  "--replace --binary "*)
    exec "$LOCKSTEP_TEST_NODE" "$(dirname "$0")/fake-kernel-load.ts" "$profiles" "$3"
    ;;
  "--remove "*)
    names=$("$parser" -N "$2" 2>/dev/null)
    while IFS= read -r name; do
      [ -n "$name" ] || continue
      { grep -vxF -e "$name (enforce)" -e "$name (complain)" -e "$name (kill)" -e "$name (unconfined)" "$profiles" || true; } > "$profiles.new"
      mv "$profiles.new" "$profiles"
    done <<<"$names"
    ;;
  *)
    exec "$parser" "$@"
    ;;
esac

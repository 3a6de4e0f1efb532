#!/usr/bin/env bash
# The namespace test bed by hand (root only): a thin wrapper around
# dist/src/testbed/cli.js. See scripts/README.md.
#   scripts/netns.sh up --spec default --detach
#   scripts/netns.sh exec b -- ping -c 1 198.18.1.2
#   scripts/netns.sh down
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli="$root/dist/src/testbed/cli.js"
if [[ ! -f "$cli" ]]; then
  echo "netns.sh: $cli is missing; run \`npx tsc -p .\` in $root first" >&2
  exit 1
fi
exec node "$cli" "$@"

#!/usr/bin/env bash
# A stand-in for `shutdown` in the bootstrap sandbox: checks the arguments as systemd's
# shutdown(8) reads them for a scheduled halt (-h, then +MINUTES, then an optional wall message)
# and appends them to $FAKE_SHUTDOWN_LOG instead of halting anything.
set -euo pipefail

: "${FAKE_SHUTDOWN_LOG:?set FAKE_SHUTDOWN_LOG to the file that records calls}"
if [ "${1:-}" != "-h" ] || [[ ! "${2:-}" =~ ^\+[0-9]+$ ]]; then
  echo "shutdown stub: expected '-h +MINUTES [MESSAGE]', got: $*" >&2
  exit 2
fi
printf '%s\n' "$*" >> "${FAKE_SHUTDOWN_LOG}"

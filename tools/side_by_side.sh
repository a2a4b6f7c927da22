#!/usr/bin/env bash
# Run lanes of commands side by side, each output line prefixed with its lane's name; report each
# lane's time and exit code; fail if any lane failed (`make test` uses it).
# usage: tools/side_by_side.sh NAME1 COMMANDS1 NAME2 COMMANDS2 [NAME3 COMMANDS3 ...]
set -uo pipefail
if [ $# -lt 4 ] || [ $(($# % 2)) -ne 0 ]; then
  echo "usage: $0 NAME1 COMMANDS1 NAME2 COMMANDS2 [NAME3 COMMANDS3 ...]" >&2
  exit 2
fi

lane() {  # NAME COMMANDS: run COMMANDS, prefix its lines with NAME, end with its time and exit code
  local start=$SECONDS rc
  bash -c "$2" 2>&1 | sed -u "s|^|$1 \| |"
  rc=${PIPESTATUS[0]}
  echo "make test: $1 took $((SECONDS - start)) s (exit $rc)"
  return "$rc"
}

start=$SECONDS
names=()
pids=()
while [ $# -gt 0 ]; do
  lane "$1" "$2" &
  pids+=("$!")
  names+=("$1")
  shift 2
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
joined=$(printf '%s, ' "${names[@]}")
echo "make test: ${joined%, } side by side took $((SECONDS - start)) s"
[ "$failed" -eq 0 ]

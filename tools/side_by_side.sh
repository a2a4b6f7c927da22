#!/usr/bin/env bash
# Run two lanes of commands side by side, each output line prefixed with its lane's name; report
# each lane's time and exit code; fail if either lane failed (`make test` uses it).
# usage: tools/side_by_side.sh NAME1 COMMANDS1 NAME2 COMMANDS2
set -uo pipefail
[ $# -eq 4 ] || { echo "usage: $0 NAME1 COMMANDS1 NAME2 COMMANDS2" >&2; exit 2; }

lane() {  # NAME COMMANDS: run COMMANDS, prefix its lines with NAME, end with its time and exit code
  local start=$SECONDS rc
  bash -c "$2" 2>&1 | sed -u "s|^|$1 \| |"
  rc=${PIPESTATUS[0]}
  echo "make test: $1 took $((SECONDS - start)) s (exit $rc)"
  return "$rc"
}

start=$SECONDS
lane "$1" "$2" & first=$!
lane "$3" "$4"; second=$?
wait "$first"; first_rc=$?
echo "make test: $1 and $3 side by side took $((SECONDS - start)) s"
[ "$first_rc" -eq 0 ] && [ "$second" -eq 0 ]

#!/usr/bin/env bash
# Run two lanes of commands side by side, each output line prefixed with its lane's name; report
# each lane's time and exit code; fail if any lane failed (`make test` uses it). A third lane, when
# given, runs at a lower priority (nice 10): it takes the CPU the first two leave idle while they
# wait (on Livy sessions, say) and little of what they use.
# usage: tools/side_by_side.sh NAME1 COMMANDS1 NAME2 COMMANDS2 [NAME3 COMMANDS3]
set -uo pipefail
[ $# -eq 4 ] || [ $# -eq 6 ] \
  || { echo "usage: $0 NAME1 COMMANDS1 NAME2 COMMANDS2 [NAME3 COMMANDS3]" >&2; exit 2; }

lane() {  # NAME COMMANDS: run COMMANDS, prefix its lines with NAME, end with its time and exit code
  local start=$SECONDS rc
  bash -c "$2" 2>&1 | sed -u "s|^|$1 \| |"
  rc=${PIPESTATUS[0]}
  echo "make test: $1 took $((SECONDS - start)) s (exit $rc)"
  return "$rc"
}

start=$SECONDS
third_rc=0
if [ $# -eq 6 ]; then
  lane "$5" "exec nice -n 10 bash -c $(printf '%q' "$6")" & third=$!
fi
lane "$1" "$2" & first=$!
lane "$3" "$4"; second_rc=$?
wait "$first"; first_rc=$?
names="$1 and $3"
if [ $# -eq 6 ]; then
  wait "$third"; third_rc=$?
  names="$1, $3 and $5"
fi
echo "make test: $names side by side took $((SECONDS - start)) s"
[ "$first_rc" -eq 0 ] && [ "$second_rc" -eq 0 ] && [ "$third_rc" -eq 0 ]

#!/bin/sh
# Runs each argument as a test command, shows its output, and ends with one line summing
# their "N passed, M failed" lines. A suite that crashes or prints no summary counts as a failure.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
p=0; f=0
for cmd in "$@"; do
  echo "--- $cmd"
  sh -c "$cmd" > "$log" 2>&1
  rc=$?
  cat "$log"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "FAIL $cmd: exit $rc and no summary line"; f=$((f + 1)); continue
  fi
  set -- $line
  p=$((p + $1)); f=$((f + $3))
  if [ $rc -ne 0 ] && [ "$3" = 0 ]; then echo "FAIL $cmd: exit $rc"; f=$((f + 1)); fi
done
echo "$p passed, $f failed"
[ $f -eq 0 ]

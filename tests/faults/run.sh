#!/usr/bin/env bash
# run.sh DESCENT - the fault-injection suite (make test-faults): every
# scenario starts a real local cluster, injects one fault while it trains
# and checks the invariants at the end. Status 77 from a scenario is a skip.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DESCENT=${1:?usage: run.sh path/to/descent}
export WORK
WORK=$(mktemp -d "${TMPDIR:-/tmp}/descent-faults-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
command -v jq >/dev/null || { echo "test-faults needs jq (make deps)"; exit 1; }
failed=0
for t in "$here"/[0-9]*.sh; do
    name=$(basename "$t" .sh)
    start=$(date +%s%3N)
    out=$(bash "$t" 2>&1)
    rc=$?
    secs=$(awk -v ms=$(($(date +%s%3N) - start)) 'BEGIN { printf "%.1f", ms / 1000 }')
    if [ "$name" = 00-baseline ] && [ $rc -eq 0 ]; then
        export BASE_ACC
        BASE_ACC=$(cat "$WORK/baseline.acc")
    fi
    case $rc in
    0) echo "PASS $name (${secs} s)" ;;
    77) echo "SKIP $name" ;;
    *) echo "FAIL $name (${secs} s)"; failed=$((failed + 1)) ;;
    esac
    echo "$out" | sed 's/^/    /'
    if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -f "$WORK/${name#*-}.log" ]; then
        echo "    --- last lines of its log:"
        tail -n 15 "$WORK/${name#*-}.log" | sed 's/^/    /'
    fi
done
[ $failed -eq 0 ] || { echo "$failed scenario(s) failed"; exit 1; }
echo "every scenario passed"

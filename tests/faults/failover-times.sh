#!/usr/bin/env bash
# failover-times.sh DESCENT [N] - kills a server (the primary of a third of
# the ranges) N times, once per job, at a random moment after the first
# epoch, and prints the time from each kill to the first push a promoted
# primary acknowledged, with p50 and p99 (nearest rank). Failure detection
# is the heartbeats' (heartbeat 100 ms, timeout 500 ms; the killed server is
# not started again, so nothing else tells the scheduler).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DESCENT=${1:?usage: failover-times.sh path/to/descent [N]}
n=${2:-20}
export WORK
WORK=$(mktemp -d "${TMPDIR:-/tmp}/descent-failover-XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
times=()
for i in $(seq 1 "$n"); do
    ms=$(
        . "$here/lib.sh"
        JOB_FLAGS+=(--cluster.timeout_ms 500)
        start "kill-$i" --job.restart_servers false
        wait_epochs 1
        sleep "0.$((RANDOM % 400))"
        t0=$(now_ms)
        kill -9 "$(child server $((1 + RANDOM % 3)))"
        finish
        check_invariants >/dev/null
        failover_ms "$t0"
    ) || {
        echo "kill $i: the job failed; the end of its log:"
        tail -n 20 "$WORK/kill-$i.log"
        exit 1
    }
    echo "kill $i: $ms ms"
    times+=("$ms")
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$n" '
    { v[NR] = $1; sum += $1 }
    END {
        p50 = v[int((50 * n + 99) / 100)]; p99 = v[int((99 * n + 99) / 100)]
        printf "failover over %d kills: p50 %d ms, p99 %d ms, min %d, max %d, mean %.0f\n",
               n, p50, p99, v[1], v[n], sum / n
    }'

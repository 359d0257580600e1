# lib.sh - what the fault scenarios share: a local cluster started with
# `descent run` in the background, a fault injected once training is under
# way, and the invariants checked on its summary.json at the end.
#
# Every scenario runs the same job (the default softmax on Fashion-MNIST,
# 3 servers, 4 workers, replicas = 2, heartbeats every 100 ms, a node silent
# for a second is dead: robust on a loaded 2-core machine) so that its
# accuracy can be compared with the fault-free run's.

DESCENT=${DESCENT:?set DESCENT to the descent binary}
WORK=${WORK:?set WORK to a scratch directory}

JOB_FLAGS=(--cluster.servers 3 --cluster.workers 4 --cluster.replicas 2
           --cluster.heartbeat_ms 100 --cluster.timeout_ms 1000
           --cluster.retry_ms 200 --train.epochs 6 --progress off)

RUN_PID=""

# start NAME [flags...]: starts the job in $WORK/NAME, log in $WORK/NAME.log.
start() {
    local name=$1
    shift
    OUT=$WORK/$name
    LOG=$WORK/$name.log
    rm -rf "$OUT"
    "$DESCENT" run --out "$OUT" "${JOB_FLAGS[@]}" "$@" >"$LOG" 2>&1 &
    RUN_PID=$!
}

# finish: waits for the job; fails the scenario when descent run failed.
finish() {
    local rc=0
    wait "$RUN_PID" || rc=$?
    RUN_PID=""
    [ "$rc" -eq 0 ] || fail "descent run exited with status $rc (log: $LOG)"
}

fail() {
    echo "FAIL: $*" >&2
    [ -n "$RUN_PID" ] && kill "$RUN_PID" 2>/dev/null
    exit 1
}

# wait_epochs N: waits until the workers have reported N epochs.
wait_epochs() {
    local n=$1 i
    for i in $(seq 1 400); do
        if [ -f "$OUT/metrics.jsonl" ] &&
            [ "$(jq -s "[.[] | select(.epoch >= $n)] | length" \
                "$OUT/metrics.jsonl" 2>/dev/null)" -ge 4 ]; then
            return 0
        fi
        kill -0 "$RUN_PID" 2>/dev/null || fail "the job ended early"
        sleep 0.05
    done
    fail "epoch $n was not reached"
}

# wait_log TEXT: waits (up to 20 s) until the job's log has TEXT.
wait_log() {
    local i
    for i in $(seq 1 400); do
        grep -q -- "$1" "$LOG" && return 0
        sleep 0.05
    done
    fail "the log never said \"$1\""
}

# child ROLE [K]: the pid of the K-th (1-based) running child of that role.
child() {
    pgrep -P "$RUN_PID" -f "descent $1" | sed -n "${2:-1}p"
}

# now_ms: wall clock in milliseconds (the servers log the same clock).
now_ms() { date +%s%3N; }

# summary FILTER: a value of the job's summary.json.
summary() { jq -r "$1" "$OUT/summary.json"; }

# check_invariants [relaxed]: nothing acknowledged lost, nothing applied
# twice, replicas byte-identical, nothing accepted under an old epoch, and
# the accuracy within one point of the fault-free run. "relaxed": a worker
# was killed, so the pushes its old process saw acknowledged after its last
# report are not known; applied must then be >= acked.
check_invariants() {
    [ "$(summary .ok)" = true ] || fail "the job failed: $(summary .error)"
    local acked applied lost same stale ranges reported acc
    acked=$(summary .audit.acked)
    applied=$(summary .audit.applied)
    lost=$(summary .audit.lost)
    same=$(summary .audit.replicas_identical)
    stale=$(summary .audit.stale_accepted)
    ranges=$(summary .audit.ranges)
    reported=$(summary .audit.ranges_reported)
    acc=$(summary .test_accuracy)
    [ "$reported" = "$ranges" ] ||
        fail "only $reported of $ranges ranges reported their audit"
    [ "$lost" = 0 ] || fail "$lost acknowledged pushes are not in the model"
    if [ "${1:-}" = relaxed ]; then
        [ "$applied" -ge "$acked" ] ||
            fail "applied $applied < acknowledged $acked"
    else
        [ "$(summary .audit.acked_exact)" = true ] ||
            fail "the acknowledged count is not exact"
        [ "$applied" = "$acked" ] ||
            fail "applied $applied != acknowledged $acked"
    fi
    [ "$same" = true ] || fail "replicas differ after quiescence"
    [ "$stale" = 0 ] || fail "$stale pushes applied under an old epoch"
    if [ -n "${BASE_ACC:-}" ]; then
        awk -v a="$acc" -v b="$BASE_ACC" \
            'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01) }' ||
            fail "accuracy $acc is not within 0.01 of the fault-free $BASE_ACC"
    fi
    echo "ok: acked $acked, applied $applied, replicas identical," \
        "failovers $(summary .audit.failovers)," \
        "rejoins $(summary .audit.rejoins), map epoch" \
        "$(summary .audit.map_epoch), accuracy $acc"
}

# failover_ms T0: milliseconds from T0 to the first push a promoted
# primary acknowledged (the servers log it with the wall clock).
failover_ms() {
    local t
    t=$(grep -o 'first push acknowledged as the new primary at [0-9]*' \
        "$LOG" | awk '{ print $NF }' | sort -n | head -1)
    [ -n "$t" ] || fail "no promoted primary acknowledged a push"
    echo $((t - $1))
}

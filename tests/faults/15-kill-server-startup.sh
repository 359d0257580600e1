# kill -9 a server during start-up, once all three have registered and
# while the workers still load their data: descent run starts it again
# with its node id and it takes its old place (no range was placed yet).
# Then kill -9 a worker that has loaded and said READY, and hold its new
# process back until the others are READY: the job must wait for the new
# process (its old READY does not count) and train with it.
. "$(dirname "$0")/lib.sh"
start kill-server-startup
loaded() { grep -c "worker: rank [0-9]*: .* training examples" "$LOG"; }
# Hold the start-up in JOINING/LOADING: stop the workers before they can
# say READY (loading the data takes them seconds; the scheduler waits
# join_timeout_ms for a worker before training).
workers=""
for i in $(seq 1 400); do
    workers=$(pgrep -P "$RUN_PID" -f "descent worker" | tr '\n' ' ')
    [ "$(echo "$workers" | wc -w)" -ge 4 ] && break
    sleep 0.01
done
[ "$(echo "$workers" | wc -w)" -ge 4 ] || fail "the workers did not start"
# shellcheck disable=SC2086
kill -STOP $workers
trap 'kill -CONT $workers 2>/dev/null' EXIT
victim=""
for i in $(seq 1 400); do
    servers=$(pgrep -P "$RUN_PID" -f "descent server")
    n=0
    for p in $servers; do [ -s "$OUT/nodes/$p" ] && n=$((n + 1)); done
    [ "$n" -ge 3 ] && victim=$(echo "$servers" | head -1) && break
    sleep 0.05
done
[ -n "$victim" ] || fail "the servers did not register"
id=$(cat "$OUT/nodes/$victim")
[ "$(loaded)" = 0 ] || fail "a worker was READY before the kill"
kill -9 "$victim"
wait_log "server $id was started again before training"
# One worker loads, says READY and is killed; its new process is held.
first=${workers%% *}
kill -CONT "$first"
for i in $(seq 1 600); do
    [ "$(loaded)" -ge 1 ] && break
    sleep 0.05
done
[ "$(loaded)" -ge 1 ] || fail "the first worker did not load"
kill -9 "$first"
wait_log "rejoined (rank"
again=$(pgrep -P "$RUN_PID" -f "descent worker .*--cluster.node_id")
[ -n "$again" ] || fail "the worker was not started again"
kill -STOP "$again"
# shellcheck disable=SC2086
kill -CONT ${workers#* }
for i in $(seq 1 600); do
    [ "$(loaded)" -ge 4 ] && break
    sleep 0.05
done
[ "$(loaded)" -ge 4 ] || fail "the other workers did not load"
kill -CONT "$again"
# Bounded: before the fix the restarted worker never got the map, and the
# job waited for it for ever.
for i in $(seq 1 1200); do
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$RUN_PID" 2>/dev/null && fail "the job did not end within 120 s"
finish
check_invariants relaxed
[ "$(summary .audit.failovers)" = 0 ] || fail "expected no failover"

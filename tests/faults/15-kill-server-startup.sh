# kill -9 a server during start-up, once all three have registered and
# while the workers still load their data: descent run starts it again
# with its node id and it takes its old place (no range was placed yet),
# so training starts with three servers and the job completes.
. "$(dirname "$0")/lib.sh"
start kill-server-startup
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
victim=""
for i in $(seq 1 400); do
    servers=$(pgrep -P "$RUN_PID" -f "descent server")
    n=0
    for p in $servers; do [ -s "$OUT/nodes/$p" ] && n=$((n + 1)); done
    [ "$n" -ge 3 ] && victim=$(echo "$servers" | head -1) && break
    sleep 0.05
done
[ -n "$victim" ] || { kill -CONT $workers; fail "the servers did not register"; }
id=$(cat "$OUT/nodes/$victim")
grep -q "placing" "$LOG" && { kill -CONT $workers; fail "start-up was over"; }
kill -9 "$victim"
for i in $(seq 1 400); do
    grep -q "server $id was started again before training" "$LOG" && break
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.05
done
# shellcheck disable=SC2086
kill -CONT $workers
grep -q "server $id was started again before training" "$LOG" ||
    fail "the restarted server did not take its place"
finish
check_invariants
[ "$(summary .audit.failovers)" = 0 ] || fail "expected no failover"

# SIGSTOP the scheduler for five failure timeouts (5 s), then SIGCONT it:
# every node kept sending heartbeats meanwhile, still unread in its socket,
# so on resuming it must judge no one before it has heard them again. No
# failover, no failed job.
. "$(dirname "$0")/lib.sh"
start pause-scheduler
wait_epochs 1
sched=$(child scheduler)
kill -STOP "$sched"
sleep 5
kill -CONT "$sched"
finish
check_invariants
[ "$(summary .audit.failovers)" = 0 ] || fail "a server was declared lost"
grep -q "the scheduler's loop stalled" "$LOG" ||
    fail "the scheduler did not notice its own stall"

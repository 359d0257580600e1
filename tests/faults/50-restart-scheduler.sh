# kill -9 the scheduler mid-training: the servers and workers carry on
# without it, descent run starts a new one on the same port, which carries
# on the job from <out>/scheduler.state, and the nodes find it there.
. "$(dirname "$0")/lib.sh"
start restart-scheduler
wait_epochs 2
kill -9 "$(child scheduler)"
finish
check_invariants
grep -q "recovered job" "$LOG" || fail "the new scheduler did not recover"
grep -q "a restarted scheduler answers" "$LOG" ||
    fail "no node noticed the new scheduler"

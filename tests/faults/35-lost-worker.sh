# kill -9 a worker and do not start it again: once another worker has
# finished its own partition, the scheduler gives it the dead worker's,
# from the step it last reported, and the job completes.
. "$(dirname "$0")/lib.sh"
start lost-worker --job.restart_workers false
wait_epochs 1
kill -9 "$(child worker 3)"
finish
check_invariants relaxed
[ "$(summary .audit.adoptions)" = 1 ] || fail "expected one adoption"
grep -q "takes over its partition" "$LOG" || fail "no adoption logged"
grep -q "adopted partition" "$LOG" || fail "no worker adopted the partition"

# kill -9 a worker: descent run starts it again and it rejoins with its
# node id, continuing from its last reported step.
. "$(dirname "$0")/lib.sh"
start kill-worker
wait_epochs 1
kill -9 "$(child worker 2)"
finish
check_invariants relaxed
grep -q "rejoined" "$LOG" || fail "the worker did not rejoin"

# A slow, lossy, reordering transport (the fault hooks): workers hold each
# request back a random 0-5 ms (so requests reorder) and drop 5% of them,
# servers drop 5% of their replies. Workers re-send after 20 ms; servers
# apply each push once.
. "$(dirname "$0")/lib.sh"
start lossy --cluster.fault_drop 0.05 --cluster.fault_delay_ms 5 \
    --cluster.retry_ms 20
finish
check_invariants
grep -Eq "[1-9][0-9]* replies dropped by fault injection" "$LOG" ||
    fail "no reply was dropped"
grep -Eq "[1-9][0-9]* dropped and [1-9][0-9]* held back" "$LOG" ||
    fail "no request was dropped or held back"

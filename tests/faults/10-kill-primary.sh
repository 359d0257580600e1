# kill -9 a server mid-training (it is the primary of some ranges and the
# backup of others) and do not start it again: its ranges fail over.
. "$(dirname "$0")/lib.sh"
start kill-primary --job.restart_servers false
wait_epochs 1
victim=$(child server)
t0=$(now_ms)
kill -9 "$victim"
finish
check_invariants
[ "$(summary .audit.failovers)" = 1 ] || fail "expected one failover"
echo "failover: $(failover_ms "$t0") ms from the kill to the first push" \
    "acknowledged by a promoted primary"

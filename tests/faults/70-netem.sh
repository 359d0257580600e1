# A slow, lossy, reordering network: the whole cluster in a network
# namespace of its own whose loopback delays every packet by 2 ms +- 2 ms
# (so packets reorder) and drops 5% of them (tc netem). TCP recovers what
# is lost; the job must end with the same invariants. Needs root and
# iproute2; skipped (status 77) where namespaces or netem cannot be had.
. "$(dirname "$0")/lib.sh"
ns=descent-faults-$$
if ! ip netns add "$ns" 2>/dev/null; then
    echo "skip: cannot create a network namespace here"
    exit 77
fi
trap 'ip netns del "$ns" 2>/dev/null' EXIT
ip netns exec "$ns" ip link set lo up
if ! ip netns exec "$ns" tc qdisc add dev lo root netem delay 2ms 2ms \
    loss 5% 2>/dev/null; then
    echo "skip: this kernel has no netem queueing discipline (sch_netem)"
    exit 77
fi
JOB_FLAGS+=(--data.limit 12000 --train.epochs 3
            --cluster.request_timeout_ms 30000)
OUT=$WORK/netem
LOG=$WORK/netem.log
rm -rf "$OUT"
ip netns exec "$ns" "$DESCENT" run --out "$OUT" "${JOB_FLAGS[@]}" \
    >"$LOG" 2>&1 &
RUN_PID=$!
finish
BASE_ACC="" check_invariants
acc=$(summary .test_accuracy)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.70) }' ||
    fail "accuracy $acc on 12,000 examples is below 0.70"

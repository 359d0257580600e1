# SIGSTOP a server for three failure timeouts (3 s), then SIGCONT it: it was
# replaced meanwhile, so it must take no write, write no checkpoint, and
# leave (descent run starts it again and it rejoins as a backup).
. "$(dirname "$0")/lib.sh"
start pause-primary
wait_epochs 1
victim=$(child server)
kill -STOP "$victim"
sleep 3
kill -CONT "$victim"
finish
check_invariants
[ "$(summary .audit.failovers)" = 1 ] || fail "expected one failover"
grep -q "declared dead and replaced" "$LOG" ||
    fail "the paused server was not fenced"
grep -q "no checkpoint: this server was replaced" "$LOG" ||
    fail "the paused server wrote a checkpoint"

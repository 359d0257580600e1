# Two servers: kill one (its ranges fail over and the survivor holds every
# range, unreplicated), let descent run start it again (it comes back as
# the backup of every range, seeded by copy), then kill it again: now a
# pure backup. It comes back once more; at the end the replicas agree.
. "$(dirname "$0")/lib.sh"
JOB_FLAGS+=(--cluster.servers 2)
start kill-backup
wait_epochs 1
kill -9 "$(child server 1)"
wait_log "is back at"
wait_epochs 3
backup=$(pgrep -f "descent server .*--cluster.node_id" | head -1)
[ -n "$backup" ] || fail "no restarted server found"
kill -9 "$backup"
finish
check_invariants
[ "$(summary .audit.failovers)" = 2 ] || fail "expected two failovers"
[ "$(summary .audit.rejoins)" = 2 ] || fail "expected two rejoins"

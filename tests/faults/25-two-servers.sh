# kill -9 two of the three servers at once, not restarted: the ranges whose
# primary and backup were both on them have no copy left, so the job must
# end, non-zero, naming those ranges and the two servers - without ever
# promoting a copy that was not seeded, or placing a backup on the second
# dead server. (Every range with a seeded copy on the survivor would have
# failed over; with three servers, two ranges in six are lost.)
. "$(dirname "$0")/lib.sh"
start two-servers --job.restart_servers false
wait_epochs 1
a=$(child server 1)
b=$(child server 2)
ida=$(cat "$OUT/nodes/$a")
idb=$(cat "$OUT/nodes/$b")
kill -9 "$a" "$b"
rc=0
wait "$RUN_PID" || rc=$?
RUN_PID=""
[ "$rc" -ne 0 ] || fail "the job ended well without two ranges"
[ "$(summary .ok)" = false ] || fail "summary.json says ok"
err=$(summary .error)
echo "error: $err"
case $err in
"2 ranges lost, no live server holds a seeded copy:"*) ;;
*) fail "the error does not name the lost ranges: $err" ;;
esac
for id in "$ida" "$idb"; do
    echo "$err" | grep -Eq "servers lost:.* server $id at tcp://" ||
        fail "the error does not name lost server $id"
done
# Each lost range had its primary on a dead server (and its backup there
# too, or none, or one never seeded).
for p in $(echo "$err" | grep -Eo "primary server [0-9]+" | awk '{ print $3 }'); do
    { [ "$p" = "$ida" ] || [ "$p" = "$idb" ]; } ||
        fail "a lost range has primary $p, which is alive"
done
if grep -q "promoted here before its seed was complete" "$LOG"; then
    fail "an unseeded copy was promoted"
fi

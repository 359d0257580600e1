#!/bin/sh
# SPDX-License-Identifier: MIT
# multihost - descent on "several hosts": a scheduler, 2 servers and 2
# workers as bare processes, each in its own network namespace with its own
# IP address, joined by veth pairs to a bridge, as docs/deploy.md tells to
# run them on separate machines.
#
# usage: tests/deploy/multihost.sh    (make test-multihost; needs root)
# environment:
#   DESCENT_BIN   the binary (default build/release/descent)
#   MIN_ACCURACY  lowest test accuracy taken as a success (0.65: the job is
#                 small, 6000 examples and 2 epochs)
#   KEEP=1        keep the output folder (printed) for a look
#
#   namespace   address        runs
#   <p>-sw      (bridge only)  the "switch": bridge br0 and one veth per host
#   <p>-sched   10.213.0.1     descent scheduler    (host name "sched")
#   <p>-srv1    10.213.0.11    descent server --advertise 10.213.0.11
#   <p>-srv2    10.213.0.12    descent server --advertise 10.213.0.12
#   <p>-wrk1    10.213.0.21    descent worker
#   <p>-wrk2    10.213.0.22    descent worker
#
# The nodes reach the scheduler by host name, through an /etc/hosts that
# `ip netns exec` mounts from /etc/netns/<namespace>/hosts. No host has
# another's loopback, so a node that advertised 127.0.0.1 would not be
# reached. The namespaces (and with them every veth), the hosts files and
# every process started here go when the script ends, however it ends.
set -eu
T=test-multihost
cd "$(dirname "$0")/../.."
. tests/deploy/lib.sh

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces (sudo make test-multihost)"
command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"
bin=${DESCENT_BIN:-build/release/descent}
[ -x "$bin" ] || fail "no $bin: make"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
data=/usr/share/datasets/fashion-mnist
[ -d "$data" ] || fail "no $data: make deps installs dataset-fashion-mnist"

p=dsmh$(($$ % 100000))
hosts="sched srv1 srv2 wrk1 wrk2"
net=10.213.0
addr() {
    case "$1" in
    sched) echo "$net.1" ;;
    srv1) echo "$net.11" ;;
    srv2) echo "$net.12" ;;
    wrk1) echo "$net.21" ;;
    wrk2) echo "$net.22" ;;
    esac
}
out=$(mktemp -d "${TMPDIR:-/tmp}/descent-multihost.XXXXXX")
pids=""

cleanup() {
    status=$?
    # A second signal must not cut the clean-up short.
    trap '' INT TERM
    for pid in $pids; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        wait "$pid" 2>/dev/null || true
    done
    for h in sw $hosts; do
        ip netns del "$p-$h" 2>/dev/null || true
        rm -rf "/etc/netns/$p-$h"
    done
    rmdir /etc/netns 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then
        echo "$T: output kept in $out"
    else
        rm -rf "$out"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The switch: a namespace holding only a bridge, so the host's own network
# is never touched.
ip netns add "$p-sw" 2>/dev/null || skip "cannot create network namespaces here"
ip -n "$p-sw" link set lo up
ip -n "$p-sw" link add br0 type bridge
ip -n "$p-sw" link set br0 up
i=0
for h in $hosts; do
    ns=$p-$h
    ip netns add "$ns"
    # veth names are at most 15 characters; both ends start in the switch.
    ip -n "$p-sw" link add "v$i" type veth peer name "eth$i"
    ip -n "$p-sw" link set "eth$i" netns "$ns"
    ip -n "$p-sw" link set "v$i" master br0 up
    ip -n "$ns" link set "eth$i" name eth0
    ip -n "$ns" addr add "$(addr "$h")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
    {
        echo "127.0.0.1 localhost"
        for o in $hosts; do echo "$(addr "$o") $o"; done
    } >"/etc/netns/$ns/hosts"
    i=$((i + 1))
done
[ "$(ip netns exec "$p-wrk2" getent hosts sched | awk '{ print $1 }')" = "$(addr sched)" ] ||
    fail "the name sched does not resolve to $(addr sched) in $p-wrk2"
say "5 hosts on $net.0/24: $(for h in $hosts; do printf '%s=%s ' "$h" "$(addr "$h")"; done)"

# The same job settings on every host, as docs/deploy.md asks.
job="--data.limit=6000 --train.epochs=2 --cluster.servers=2 --cluster.workers=2
     --cluster.join_timeout_ms=30000 --job.progress=lines"
start() { # start HOST ROLE [flags]: the role on HOST, logging to out/HOST.log
    h=$1
    role=$2
    shift 2
    mkdir -p "$out/$h"
    # shellcheck disable=SC2086 # $job is a list of flags
    ip netns exec "$p-$h" timeout 180 "$bin" "$role" $job --job.out="$out/$h" "$@" \
        >"$out/$h.log" 2>&1 &
    pids="$pids $!"
    eval "pid_$h=\$!"
}
begin=$(date +%s)
start sched scheduler --cluster.bind=tcp://0.0.0.0:7070 --cluster.advertise="$(addr sched)"
for h in srv1 srv2; do
    start "$h" server --cluster.scheduler=tcp://sched:7070 \
        --cluster.bind=tcp://0.0.0.0:7071 --cluster.advertise="$(addr "$h")"
done
for h in wrk1 wrk2; do
    start "$h" worker --cluster.scheduler=tcp://sched:7070 --cluster.advertise="$(addr "$h")"
done

failed=""
for h in $hosts; do
    eval "pid=\$pid_$h"
    # shellcheck disable=SC2154 # set by eval
    if wait "$pid"; then :; else failed="$failed $h($?)"; fi
done
pids=""
say "the job ran in $(($(date +%s) - begin)) s"
if [ -n "$failed" ]; then
    for h in $hosts; do
        echo "--- $h"
        tail -n 15 "$out/$h.log"
    done >&2
    fail "exited with an error:$failed"
fi

# Each server joined from its own address, and the workers reached them there.
for h in srv1 srv2; do
    grep -q "joined from tcp://$(addr "$h"):7071" "$out/sched.log" ||
        fail "the scheduler did not see $h join from $(addr "$h")"
done
grep "joined from" "$out/sched.log" | sed 's/^[0-9:.]* info  /  /'
grep -h "test accuracy .* results in" "$out/sched.log" "$out/wrk1.log" "$out/wrk2.log" | tail -n 1
check_summary "$out/sched/summary.json" "${MIN_ACCURACY:-0.65}"
n=$(find "$out/srv1/checkpoints" "$out/srv2/checkpoints" -name '*.ckpt' | wc -l)
[ "$n" -gt 0 ] || fail "the servers wrote no checkpoint"
say "$n checkpoints, on the servers' own disks"
echo "1 passed, 0 failed"

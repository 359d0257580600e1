#!/bin/sh
# SPDX-License-Identifier: MIT
# compose-faults - container-level faults on docker-compose.yml. The same job
# trains twice, one cluster at a time: fault-free, then while a server is
# killed (docker kill) and started again with its node id, a worker is paused
# past the failure timeout (docker pause), and another server is cut off the
# network and reconnected (docker network disconnect). At the end the
# invariants of the process-level fault suite hold: nothing acknowledged is
# lost, every push is applied once, the replicas are identical, nothing was
# accepted under an old map epoch, and the accuracy is within one point of
# the fault-free run's. Each cluster is removed whatever happens.
#
# usage: tests/deploy/compose-faults.sh   (make test-compose runs it after
#                                          tests/deploy/compose.sh)
# environment:
#   EPOCHS        epochs of the job (40): long enough for the three faults,
#                 one after the other, to land while it trains
#   HEARTBEAT_MS  [cluster] heartbeat_ms (200)
#   TIMEOUT_MS    [cluster] timeout_ms (1500)
#   PAUSE_S       seconds the worker stays paused and the server cut off
#                 (three failure timeouts: 4.5)
#   WORKERS       worker containers (4)
#   DS_IMAGE, DS_DATA   as in docker-compose.yml
#
# Three servers, not two: with replicas = 2, a server fault leaves each of
# its ranges on one copy until a backup is seeded. The killed server comes
# back (as a backup, with its node id) before the second server fault, so
# every range still has two copies when that server is cut off, and again
# after it (docs/deploy.md, "Faults in containers").
set -eu
T=test-compose-faults
cd "$(dirname "$0")/../.."
. tests/deploy/lib.sh

command -v docker >/dev/null 2>&1 || skip "no docker command"
docker info >/dev/null 2>&1 || skip "no Docker engine reachable"
compose=$(compose_cmd)
[ -n "$compose" ] || skip "neither 'docker compose' nor docker-compose is installed"
image=${DS_IMAGE:-descent:latest}
docker image inspect "$image" >/dev/null 2>&1 || fail "no image $image: make image"
[ -d "${DS_DATA:-/usr/share/datasets/fashion-mnist}" ] ||
    fail "no ${DS_DATA:-/usr/share/datasets/fashion-mnist}: make deps installs dataset-fashion-mnist"

epochs=${EPOCHS:-40}
heartbeat=${HEARTBEAT_MS:-200}
timeout=${TIMEOUT_MS:-1500}
pause=${PAUSE_S:-$(awk -v t="$timeout" 'BEGIN { print 3 * t / 1000 }')}
servers=3
workers=${WORKERS:-4}
DS_SERVERS=$servers
DS_WORKERS=$workers
export DS_SERVERS DS_WORKERS

tmp=$(mktemp -d "${TMPDIR:-/tmp}/descent-compose-faults.XXXXXX")
# Both runs get the same settings: docker-compose.yml's, plus these DESCENT_*
# variables on every service (the environment beats the job file).
cat >"$tmp/faults.yml" <<EOF
version: "3.8"
services:
  scheduler:
    environment: &faults
      DESCENT_CLUSTER_HEARTBEAT_MS: "$heartbeat"
      DESCENT_CLUSTER_TIMEOUT_MS: "$timeout"
      DESCENT_CLUSTER_RETRY_MS: "500"
      DESCENT_TRAIN_EPOCHS: "$epochs"
      DESCENT_JOB_PROGRESS: lines
  server:
    environment: *faults
  worker:
    environment: *faults
EOF

project=""
paused=""
cut=""
dc() { $compose -p "$project" -f docker-compose.yml -f "$tmp/faults.yml" "$@"; }

# remove_project takes the current project down and checks that nothing of
# it is left; whatever down -v missed is removed by hand.
remove_project() {
    if [ -n "$paused" ]; then
        docker unpause "$paused" >/dev/null 2>&1 || true
        paused=""
    fi
    dc down -v --remove-orphans >>"$tmp/compose.log" 2>&1 || true
    left=$(project_left "$project")
    if [ -n "$left" ]; then
        for id in $(docker ps -a -q --filter "label=com.docker.compose.project=$project"); do
            docker rm -f "$id" >/dev/null 2>&1 || true
        done
        for id in $(docker volume ls -q --filter "label=com.docker.compose.project=$project"); do
            docker volume rm "$id" >/dev/null 2>&1 || true
        done
        for id in $(docker network ls -q --filter "label=com.docker.compose.project=$project"); do
            docker network rm "$id" >/dev/null 2>&1 || true
        done
        echo "$T: down -v left $(echo "$left" | wc -l) objects of $project; removed them" >&2
        project=""
        return 1
    fi
    project=""
}

cleanup() {
    rc=$?
    if [ -n "$project" ]; then
        if [ "$rc" -ne 0 ]; then
            dc logs --no-color >"$tmp/$project.log" 2>&1 || true
            echo "$T: the last lines of $project's logs:" >&2
            grep -v '| epoch [0-9]' "$tmp/$project.log" | tail -n 40 >&2
        fi
        remove_project || true
    fi
    if [ "$rc" -eq 0 ]; then
        rm -rf "$tmp"
    else
        echo "$T: logs and summaries kept in $tmp" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
# since T0_MS prints the seconds from T0_MS to now.
since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# names SERVICE: the containers compose started for SERVICE (not one-off
# ones), one name a line, sorted.
names() {
    docker ps -a --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=$1" \
        --filter "label=com.docker.compose.oneoff=False" \
        --format '{{.Names}}' | sort
}
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
stopped() { ! running "$1"; }
exit_code() { docker inspect -f '{{.State.ExitCode}}' "$1"; }
address() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
# node_of CONTAINER: the node id the scheduler gave the server or worker.
node_of() { docker logs "$1" 2>&1 | sed -n 's/.*registered as node \([0-9]*\).*/\1/p' | head -n 1; }
# said PATTERN: the scheduler's output has a line matching PATTERN.
said() { docker logs "$sched" 2>&1 | grep -q -e "$1"; }
# silent_ms ID: how long server ID had been silent when it was declared dead.
silent_ms() {
    docker logs "$sched" 2>&1 |
        sed -n "s/.*server $1 at .* is lost (nothing heard for \([0-9]*\) ms).*/\1/p" | head -n 1
}
# training: the scheduler runs and has not ended the job.
training() { running "$sched" && ! said "every worker is done"; }

# wait_said SECONDS WHAT PATTERN: waits for PATTERN in the scheduler's
# output; fails at once when the job ends without it.
wait_said() {
    ws_end=$(($(date +%s) + $1))
    until said "$3"; do
        training || fail "the job ended before $2 (EPOCHS=$epochs is too few?)"
        [ "$(date +%s)" -lt "$ws_end" ] || fail "$2: not within $1 s"
        sleep 0.2
    done
}

# up NAME: starts the cluster of project NAME in the background.
up() {
    project=$1
    say "$project: up, $servers servers, $workers workers, $epochs epochs"
    dc up -d --scale server="$servers" --scale worker="$workers" \
        >>"$tmp/compose.log" 2>&1 || fail "$compose up failed (see $tmp/compose.log)"
    sched=$(names scheduler)
    [ -n "$sched" ] || fail "no scheduler container"
}

# finish EXPECTED: waits for the job to end and every container to stop,
# checks each container's exit status (0, or what EXPECTED gives as
# "name=status" words), copies summary.json out and takes the project down.
finish() {
    wait_until 600 "the job ends" stopped "$sched"
    for c in $(docker ps -a -q --filter "label=com.docker.compose.project=$project"); do
        wait_until 60 "container $c stops" stopped "$c"
    done
    for c in $(docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}}'); do
        want=0
        for e in $1; do
            [ "${e%=*}" = "$c" ] && want=${e#*=}
        done
        got=$(exit_code "$c")
        [ "$got" = "$want" ] || fail "$c exited with status $got, expected $want"
    done
    say "$project: every container exited as expected ($(echo "$1" | wc -w) by a fault)"
    dc logs --no-color >"$tmp/$project.log" 2>&1 || true
    sed -n 's/^/  /; /test accuracy .* results in/p' "$tmp/$project.log"
    docker run --rm -v "${project}_out:/v:ro" --entrypoint cat "$image" \
        /v/run/summary.json >"$tmp/$project.json" || fail "cannot read summary.json from the volume"
    summary=$tmp/$project.json
    name=$project
    remove_project || fail "down -v did not remove everything of $name"
}

# The fault-free run: the accuracy the faulty run is held to.
start=$(now_ms)
up "descent-faults-$$-base"
finish ""
check_audit "$summary"
[ "$(json_val "$summary" failovers)" = 0 ] ||
    fail "a server was declared dead in the fault-free run (TIMEOUT_MS=$timeout too short here?)"
base_acc=$(json_val "$summary" test_accuracy)
say "fault-free run: $(since "$start") s, test accuracy $base_acc"

# The faulty run.
start=$(now_ms)
up "descent-faults-$$"
wait_said 300 "epoch 2" "^epoch 2/"
say "training: epoch 2 after $(since "$start") s"
# shellcheck disable=SC2046 # one name per word
set -- $(names server)
[ $# -eq "$servers" ] || fail "$# server containers, expected $servers"
killed=$1
cut=$2
killed_id=$(node_of "$killed")
cut_id=$(node_of "$cut")
if [ -z "$killed_id" ] || [ -z "$cut_id" ]; then
    fail "cannot tell the servers' node ids"
fi

# 1. docker kill a server (SIGKILL: it exits 137). Its ranges fail over to
# their backups, which are given new backups on the third server; then it
# is started again with its node id and rejoins as a backup.
t0=$(now_ms)
docker kill "$killed" >/dev/null
wait_said 30 "server $killed_id was declared dead" "server $killed_id at .* is lost"
say "docker kill $killed (server $killed_id): declared dead after $(since "$t0") s" \
    "(silent for $(silent_ms "$killed_id") ms)"
t0=$(now_ms)
dc run -d --no-deps -e DESCENT_CLUSTER_NODE_ID="$killed_id" server \
    >>"$tmp/compose.log" 2>&1 || fail "$compose run server failed"
wait_said 120 "server $killed_id came back" "server $killed_id is back"
say "  started again with node id $killed_id: back as a backup after $(since "$t0") s"

# 2. docker pause a worker (the cgroup freezer: no signal it could see) for
# three failure timeouts. The scheduler waits for it; it continues.
worker=$(names worker | head -n 1)
worker_id=$(node_of "$worker")
t0=$(now_ms)
docker pause "$worker" >/dev/null
paused=$worker
sleep "$pause"
docker unpause "$worker" >/dev/null
paused=""
wait_said 30 "worker $worker_id answered again" "worker $worker_id answers again"
said "worker $worker_id is silent" ||
    fail "the scheduler never missed the paused worker $worker_id"
say "docker pause $worker (worker $worker_id) for $pause s: missed, then back after $(since "$t0") s"

# 3. docker network disconnect a server for three failure timeouts. It is
# declared dead meanwhile, and when it is reconnected the scheduler tells it
# it was replaced: it exits 3, and writes no checkpoint.
net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$cut")
addr=$(address "$cut")
t0=$(now_ms)
docker network disconnect "$net" "$cut"
wait_said 30 "server $cut_id was declared dead" "server $cut_id at .* is lost"
lost_s=$(since "$t0")
sleep "$(awk -v p="$pause" -v l="$lost_s" 'BEGIN { s = p - l; print (s > 0 ? s : 0) }')"
# The service name is its alias on the network, as compose set it up.
docker network connect --alias server "$net" "$cut"
training || fail "the job ended while $cut was cut off (EPOCHS=$epochs is too few?)"
say "docker network disconnect $cut (server $cut_id) for $(since "$t0") s:" \
    "declared dead after $lost_s s (silent for $(silent_ms "$cut_id") ms)"
# Docker gives the lowest free address back, its own: only the killed
# server's was freed, and the one that replaced it took it. Under a new
# address its old connections are dead and it would not hear the scheduler.
now=$(address "$cut")
[ "$now" = "$addr" ] ||
    say "warning: $cut came back as $now, not $addr"
t0=$(now_ms)
wait_until 60 "the replaced server $cut exits" stopped "$cut"
[ "$(exit_code "$cut")" = 3 ] ||
    fail "the replaced server $cut exited with status $(exit_code "$cut"), expected 3" \
        "(its address: $addr, after the reconnection $now)"
docker logs "$cut" 2>&1 | grep -q "no checkpoint: this server was replaced" ||
    fail "the replaced server $cut did not say it wrote no checkpoint"
say "  reconnected: told it was replaced, exited 3 after $(since "$t0") s, no checkpoint"
training || fail "the job ended before the last fault was over (EPOCHS=$epochs is too few?)"

finish "$killed=137 $cut=3"
check_audit "$summary" "$base_acc"
[ "$(json_val "$summary" failovers)" = 2 ] ||
    fail "$(json_val "$summary" failovers) failovers, expected 2 (the kill and the cut)"
[ "$(json_val "$summary" rejoins)" = 1 ] ||
    fail "$(json_val "$summary" rejoins) rejoins, expected 1 (the killed server)"
[ "$(json_val "$summary" replicated_ranges)" = "$(json_val "$summary" ranges)" ] ||
    fail "only $(json_val "$summary" replicated_ranges) ranges have a backup at the end"
say "faulty run: $(since "$start") s, test accuracy $(json_val "$summary" test_accuracy)" \
    "(fault-free $base_acc)"
say "down -v left nothing behind"
echo "1 passed, 0 failed"

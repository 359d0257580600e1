#!/bin/sh
# SPDX-License-Identifier: MIT
# swarm - deploy docker-compose.yml, with the swarm-only keys of
# deploy/swarm.yml, as a stack on a one-node swarm, wait for the job to end,
# check the result, remove everything.
#
# usage: tests/deploy/swarm.sh        (make test-swarm builds the image first)
#
# When this engine is in no swarm, the test makes a one-node swarm on
# 127.0.0.1 and leaves it at the end (docker swarm leave --force, and the
# docker_gwbridge network the swarm created). When it is already in a
# swarm, the test deploys there and removes only its own stack and volume;
# the image must then be on every node that may run a task.
# environment: MIN_ACCURACY (0.80), DS_IMAGE and the other DS_* knobs of
# docker-compose.yml.
set -eu
T=test-swarm
cd "$(dirname "$0")/../.."
. tests/deploy/lib.sh

command -v docker >/dev/null 2>&1 || skip "no docker command"
docker info >/dev/null 2>&1 || skip "no Docker engine reachable"
docker stack --help >/dev/null 2>&1 || skip "this docker client has no 'stack' command"
image=${DS_IMAGE:-descent:latest}
docker image inspect "$image" >/dev/null 2>&1 || fail "no image $image: make image"

stack=descenttest$$
summary=$(mktemp "${TMPDIR:-/tmp}/descent-swarm.XXXXXX")
created=0
had_gwbridge=0
docker network inspect docker_gwbridge >/dev/null 2>&1 && had_gwbridge=1
cleanup() {
    docker stack rm "$stack" >/dev/null 2>&1 || true
    # Task containers go away asynchronously; the volume only after them.
    i=0
    while [ $i -lt 30 ] && [ -n "$(docker ps -a -q --filter "label=com.docker.stack.namespace=$stack")" ]; do
        sleep 1
        i=$((i + 1))
    done
    docker volume rm "${stack}_out" >/dev/null 2>&1 || true
    if [ "$created" = 1 ]; then
        docker swarm leave --force >/dev/null 2>&1 || true
        [ "$had_gwbridge" = 1 ] || docker network rm docker_gwbridge >/dev/null 2>&1 || true
    fi
    rm -f "$summary"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" = inactive ]; then
    say "docker swarm init (one node, 127.0.0.1)"
    docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null ||
        fail "docker swarm init failed"
    created=1
elif [ "$state" = active ]; then
    say "using the swarm this engine is in"
else
    skip "swarm state is '$state'"
fi

say "docker stack deploy -c docker-compose.yml -c deploy/swarm.yml $stack"
start=$(date +%s)
docker stack deploy -c docker-compose.yml -c deploy/swarm.yml "$stack" >/dev/null ||
    fail "stack deploy failed"

# Wait until no task is still to run or running (restart_policy none: each
# task runs once and ends Complete or Failed).
deadline=$((start + 600))
while :; do
    tasks=$(docker stack ps "$stack" --format '{{.Name}} {{.CurrentState}}' 2>/dev/null || true)
    if [ -n "$tasks" ] && ! echo "$tasks" | grep -q -E 'New|Pending|Assigned|Accepted|Preparing|Ready|Starting|Running'; then
        break
    fi
    [ "$(date +%s)" -lt "$deadline" ] || {
        echo "$tasks" >&2
        fail "the stack did not finish within 600 s"
    }
    sleep 2
done
say "the stack ran in $(($(date +%s) - start)) s"
echo "$tasks" | sed 's/^/  /'
if echo "$tasks" | grep -v -q ' Complete'; then
    docker service logs "${stack}_scheduler" 2>&1 | tail -n 30 >&2
    fail "not every task completed"
fi
docker service logs "${stack}_scheduler" 2>/dev/null | sed -n 's/^.*| //; /test accuracy .* results in/p' | tail -n 1

docker run --rm -v "${stack}_out:/v:ro" --entrypoint cat "$image" \
    /v/run/summary.json >"$summary" || fail "cannot read summary.json from the volume"
check_summary "$summary" "${MIN_ACCURACY:-0.80}"
echo "1 passed, 0 failed"

#!/bin/sh
# SPDX-License-Identifier: MIT
# compose - train the default job with docker-compose.yml, check the result,
# then `down -v` and check that nothing of the project is left.
#
# usage: tests/deploy/compose.sh      (make test-compose builds the image first)
# environment:
#   WORKERS       worker containers (--scale worker=N; default 4)
#   DS_WORKERS    workers the scheduler waits for (default 0: every worker
#                 that joins; the count comes from WORKERS alone)
#   MIN_ACCURACY  lowest test accuracy taken as a success (0.80)
#   DS_IMAGE, DS_SERVERS, DS_JOB, DS_DATA   as in docker-compose.yml
set -eu
T=test-compose
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

workers=${WORKERS:-4}
DS_WORKERS=${DS_WORKERS:-0}
export DS_WORKERS
project=descent-test-$$
log=$(mktemp "${TMPDIR:-/tmp}/descent-compose.XXXXXX")
summary=$log.summary
dc() { $compose -p "$project" -f docker-compose.yml "$@"; }
cleanup() {
    dc down -v --remove-orphans >/dev/null 2>&1 || true
    rm -f "$log" "$summary"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "$compose up: project $project, $workers workers (the job waits for $DS_WORKERS)"
start=$(date +%s)
# Everything ends by itself when the job is done; the timeout only guards
# against a hang.
# shellcheck disable=SC2086 # "docker compose" is two words
if ! timeout 600 $compose -p "$project" -f docker-compose.yml up --scale worker="$workers" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    fail "$compose up did not finish"
fi
say "up took $(($(date +%s) - start)) s"
sed -n 's/\x1b\[[0-9;]*m//g; /test accuracy .* results in/p' "$log" | tail -n 1

# Every container ran to the end and exited 0.
bad=$(docker ps -a --filter "label=com.docker.compose.project=$project" \
    --format '{{.Names}} {{.Status}}' | grep -v 'Exited (0)' || true)
if [ -n "$bad" ]; then
    tail -n 60 "$log" >&2
    fail "containers that did not exit 0: $bad"
fi
n=$(docker ps -a --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=worker" -q | wc -l)
[ "$n" -eq "$workers" ] || fail "$n worker containers, expected $workers"

# The results are on the named volume.
docker run --rm -v "${project}_out:/v:ro" --entrypoint cat "$image" \
    /v/run/summary.json >"$summary" || fail "cannot read summary.json from the volume"
check_summary "$summary" "${MIN_ACCURACY:-0.80}"
ckpts=$(docker run --rm -v "${project}_out:/v:ro" --entrypoint sh "$image" \
    -c 'ls /v/run/checkpoints | wc -l')
[ "$ckpts" -gt 0 ] || fail "no checkpoints on the volume"
say "$ckpts checkpoint files on the volume"

# down -v leaves no container, volume or network of the project.
dc down -v --remove-orphans >/dev/null 2>&1 || fail "$compose down -v failed"
left="$(docker ps -a -q --filter "label=com.docker.compose.project=$project")"
left="$left$(docker volume ls -q --filter "label=com.docker.compose.project=$project")"
left="$left$(docker network ls -q --filter "label=com.docker.compose.project=$project")"
[ -z "$left" ] || fail "down -v left: $left"
say "down -v left nothing behind"
echo "1 passed, 0 failed"

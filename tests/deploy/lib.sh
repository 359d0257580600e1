# SPDX-License-Identifier: MIT
# shellcheck shell=sh
# lib - helpers the deployment tests share (sourced, POSIX sh).

say() { echo "$T: $*"; }
fail() {
    echo "$T: FAILED: $*" >&2
    exit 1
}
skip() {
    echo "$T: skipped: $*"
    exit 0
}

# compose_cmd prints the compose tool: $COMPOSE when it works (make passes
# its own), else the v2 plugin when it works, else docker-compose; nothing
# when there is none.
compose_cmd() {
    # shellcheck disable=SC2086 # "docker compose" is two words
    if [ -n "${COMPOSE:-}" ] && $COMPOSE version >/dev/null 2>&1; then
        echo "$COMPOSE"
    elif docker compose version >/dev/null 2>&1; then
        echo "docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        echo docker-compose
    fi
}

# json_num FILE KEY prints the first number stored under "KEY" in FILE.
json_num() {
    sed -n "s/.*\"$2\": *\\(-\\{0,1\\}[0-9][0-9.eE+-]*\\).*/\\1/p" "$1" | head -n 1
}

# check_summary FILE MIN_ACCURACY: summary.json says ok and the test
# accuracy is at least MIN_ACCURACY (and at most 1).
check_summary() {
    [ -s "$1" ] || fail "no summary.json"
    grep -q '"ok": *true' "$1" || fail "summary.json does not say ok: $(head -c 400 "$1")"
    acc=$(json_num "$1" test_accuracy)
    [ -n "$acc" ] || fail "summary.json has no test_accuracy"
    awk -v a="$acc" -v m="$2" 'BEGIN { exit !(a >= m && a <= 1) }' ||
        fail "test accuracy $acc is below $2"
    say "summary.json: ok, test accuracy $acc (at least $2)"
}

# json_val FILE KEY prints the first number, true or false stored under
# "KEY" in FILE, in document order (summary.json is one line).
json_val() {
    tr ',{}' '\n' <"$1" |
        sed -n "s/^ *\"$2\": *\\(true\\|false\\|-\\{0,1\\}[0-9][0-9.eE+-]*\\) *$/\\1/p" |
        head -n 1
}

# check_audit FILE [BASE_ACCURACY]: the invariants of the process-level fault
# suite (tests/faults/lib.sh) on a summary.json: the job ended ok, every
# range reported its audit, no acknowledged push is lost, every push was
# applied once (applied == acked; >= when a worker restarted and the count
# is not exact), the replicas are identical, nothing was accepted under an
# old map epoch, and the test accuracy is within 0.01 of BASE_ACCURACY.
check_audit() {
    [ -s "$1" ] || fail "no summary.json"
    [ "$(json_val "$1" ok)" = true ] ||
        fail "the job failed: $(sed -n 's/.*"error": *"\([^"]*\)".*/\1/p' "$1")"
    ranges=$(json_val "$1" ranges)
    reported=$(json_val "$1" ranges_reported)
    acked=$(json_val "$1" acked)
    applied=$(json_val "$1" applied)
    lost=$(json_val "$1" lost)
    acc=$(json_val "$1" test_accuracy)
    if [ -z "$ranges" ] || [ -z "$acked" ] || [ -z "$acc" ]; then
        fail "summary.json has no audit or no test accuracy"
    fi
    [ "$reported" = "$ranges" ] ||
        fail "only $reported of $ranges ranges reported their audit"
    [ "$lost" = 0 ] || fail "$lost acknowledged pushes are not in the model"
    if [ "$(json_val "$1" acked_exact)" = true ]; then
        [ "$applied" = "$acked" ] || fail "applied $applied != acknowledged $acked"
    else
        [ "$applied" -ge "$acked" ] || fail "applied $applied < acknowledged $acked"
    fi
    [ "$(json_val "$1" replicas_identical)" = true ] ||
        fail "replicas differ after quiescence"
    stale=$(json_val "$1" stale_accepted)
    [ "$stale" = 0 ] || fail "$stale pushes applied under an old map epoch"
    if [ -n "${2:-}" ]; then
        awk -v a="$acc" -v b="$2" \
            'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01 + 1e-9) }' ||
            fail "test accuracy $acc is not within 0.01 of the fault-free $2"
    fi
    say "audit: ranges $reported/$ranges, acked $acked, applied $applied," \
        "lost $lost, exact $(json_val "$1" acked_exact)," \
        "replicated $(json_val "$1" replicated_ranges), identical," \
        "stale $stale, fenced $(json_val "$1" fenced)," \
        "failovers $(json_val "$1" failovers), rejoins $(json_val "$1" rejoins)," \
        "map epoch $(json_val "$1" map_epoch); test accuracy $acc"
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it
# succeeds; fails, naming WHAT, after SECONDS.
wait_until() {
    wu_end=$(($(date +%s) + $1))
    wu_what=$2
    shift 2
    until "$@"; do
        [ "$(date +%s)" -lt "$wu_end" ] || fail "$wu_what: not within the time allowed"
        sleep 0.2
    done
}

# project_left PROJECT prints the ids of the containers, volumes and
# networks compose project PROJECT still has; nothing when it is gone.
project_left() {
    docker ps -a -q --filter "label=com.docker.compose.project=$1"
    docker volume ls -q --filter "label=com.docker.compose.project=$1"
    docker network ls -q --filter "label=com.docker.compose.project=$1"
}

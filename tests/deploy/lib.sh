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

# compose_cmd prints the compose tool: the v2 plugin when it works, else
# docker-compose; nothing when neither exists.
compose_cmd() {
    if docker compose version >/dev/null 2>&1; then
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

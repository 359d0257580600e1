#!/bin/sh
# SPDX-License-Identifier: MIT
# descent-entrypoint - start a descent role in a container, or check its health.
#
#   descent-entrypoint scheduler|server|worker|run [options]   start descent
#   descent-entrypoint health listen [PORT]    a TCP socket listens (on PORT,
#                                              else on DESCENT_CLUSTER_BIND's
#                                              port, else on any)
#   descent-entrypoint health connected        a TCP connection is established
#   descent-entrypoint other-command ...       any other descent subcommand or
#                                              program (sh, descent config ...)
#
# Before starting a role it fills in what a container cannot know in advance:
# - DESCENT_CLUSTER_ADVERTISE, when unset: this container's own IPv4 address
#   (what its hostname resolves to), so others reach it on the shared network;
# - DESCENT_CONFIG, when unset and /etc/descent/job.ini exists: that job file.
# With DS_AFTER_JOB=wait a role that ended well stays up (idle) instead of
# exiting, for orchestrators that restart whatever exits (a Kubernetes
# Deployment or StatefulSet). No other variable is read here: every DESCENT_*
# variable is an option of descent itself (docs/configuration.md).
set -eu

die() {
    echo "descent-entrypoint: $*" >&2
    exit 2
}

# own_address prints the first IPv4 address this container's hostname
# resolves to: its address on the first network it is attached to.
own_address() {
    name=$(uname -n)
    addr=$(getent ahostsv4 "$name" 2>/dev/null | awk '$1 !~ /^127\./ { print $1; exit }')
    [ -n "$addr" ] || die "cannot find this container's address ($name does not resolve); set DESCENT_CLUSTER_ADVERTISE"
    echo "$addr"
}

# health_check STATE [PORT] succeeds when /proc/net/tcp{,6} holds a socket in
# STATE (0A listen, 01 established), with local PORT when one is given.
health_check() {
    port_hex=""
    if [ -n "${2:-}" ]; then
        port_hex=$(printf '%04X' "$2")
    fi
    awk -v st="$1" -v port="$port_hex" '
        $4 == st && (port == "" || $2 ~ (":" port "$")) { found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

health() {
    case "${1:-}" in
    listen)
        port=${2:-}
        if [ -z "$port" ]; then
            # tcp://0.0.0.0:7070 -> 7070; a port of * (any) checks any socket.
            port=$(echo "${DESCENT_CLUSTER_BIND:-}" | sed -n 's/^.*:\([0-9][0-9]*\)$/\1/p')
        fi
        health_check 0A "$port" || { echo "no socket listening${port:+ on port $port}"; exit 1; }
        ;;
    connected)
        health_check 01 || { echo "no established connection"; exit 1; }
        ;;
    *) die "usage: descent-entrypoint health listen [PORT] | connected" ;;
    esac
}

# run_role starts descent; with DS_AFTER_JOB=wait it stays as the parent,
# passes SIGTERM and SIGINT on, and idles after a successful end.
run_role() {
    if [ "${DS_AFTER_JOB:-exit}" != wait ]; then
        exec descent "$@"
    fi
    descent "$@" &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null' TERM INT
    status=0
    # wait returns early when a trapped signal arrives; wait again until the
    # child has really gone.
    while kill -0 "$child" 2>/dev/null; do
        wait "$child" && status=0 || status=$?
    done
    trap - TERM INT
    if [ "$status" != 0 ]; then
        exit "$status"
    fi
    echo "descent-entrypoint: descent $1 ended well; idling (DS_AFTER_JOB=wait)"
    trap 'exit 0' TERM INT
    while :; do
        sleep 3600 &
        wait $! || true
    done
}

[ $# -gt 0 ] || set -- run
case "$1" in
health)
    shift
    health "$@"
    ;;
scheduler | server | worker | run)
    if [ "$1" != run ] && [ -z "${DESCENT_CLUSTER_ADVERTISE:-}" ]; then
        DESCENT_CLUSTER_ADVERTISE=$(own_address)
        export DESCENT_CLUSTER_ADVERTISE
    fi
    if [ -z "${DESCENT_CONFIG:-}" ] && [ -f /etc/descent/job.ini ]; then
        DESCENT_CONFIG=/etc/descent/job.ini
        export DESCENT_CONFIG
    fi
    run_role "$@"
    ;;
-* | config | optimizers | plot | datagen | help)
    exec descent "$@"
    ;;
*)
    exec "$@"
    ;;
esac

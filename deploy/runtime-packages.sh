#!/bin/sh
# SPDX-License-Identifier: MIT
# runtime-packages - print the Debian packages that provide the shared
# libraries a binary links, one a line: what the runtime image installs.
#
# usage: deploy/runtime-packages.sh BINARY
#
# ldd names each library by the path the loader found; dpkg knows it under
# that path, its target (alternatives such as libopenblas.so.0) or its
# merged-/usr twin, so each is tried. A library no package owns stops the
# build rather than leaving a binary that cannot start.
set -eu
bin=${1:?usage: runtime-packages.sh BINARY}
deps=$(ldd "$bin") || exit 1
pkgs=""
for lib in $(echo "$deps" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    real=$(readlink -f "$lib")
    pkg=""
    for p in "$lib" "$real" "${lib#/usr}" "/usr$lib" "${real#/usr}" "/usr$real"; do
        pkg=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$pkg" ] && break
    done
    if [ -z "$pkg" ]; then
        echo "runtime-packages: no package owns $lib" >&2
        exit 1
    fi
    pkgs="$pkgs $pkg"
done
# shellcheck disable=SC2086 # one package a word
printf "%s\n" $pkgs | sort -u

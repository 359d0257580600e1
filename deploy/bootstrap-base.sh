#!/bin/sh
# SPDX-License-Identifier: MIT
# bootstrap-base - make sure the base image of deploy/Dockerfile exists:
# pull it, or, where no registry is reachable, build it from Debian's
# package archive with debootstrap and `docker import` it under the same tag.
#
# usage: deploy/bootstrap-base.sh [--force] [TAG]
#   TAG      the image to provide (default debian:bookworm-slim)
#   --force  bootstrap again even when TAG exists
# environment:
#   DEBIAN_MIRROR    archive to bootstrap from (default http://deb.debian.org/debian)
#   DEBIAN_SECURITY  security archive written to the image's apt sources
#                    (default http://deb.debian.org/debian-security)
#   BOOTSTRAP_PULL   0 skips the `docker pull` attempt
#
# The local image follows what the official slim image does (debuerreotype):
# a minbase system, no documentation, manuals or locales, apt that keeps no
# package files. Only the suite "bookworm" is supported: the Dockerfile's
# apt lines name packages of Debian 12.
set -eu

force=0
tag=debian:bookworm-slim
for a in "$@"; do
    case "$a" in
    --force) force=1 ;;
    -h | --help)
        sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*)
        echo "bootstrap-base: unknown option $a" >&2
        exit 2
        ;;
    *) tag=$a ;;
    esac
done
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
suite=bookworm

say() { echo "bootstrap-base: $*"; }

if ! docker info >/dev/null 2>&1; then
    say "cannot reach the Docker engine (is it running? are you in the docker group?)" >&2
    exit 1
fi
if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    say "$tag is present"
    exit 0
fi
if [ "$force" = 0 ] && [ "${BOOTSTRAP_PULL:-1}" != 0 ]; then
    say "pulling $tag"
    if timeout 300 docker pull -q "$tag"; then
        exit 0
    fi
    say "cannot pull $tag; bootstrapping it from $mirror"
fi

if [ "$(id -u)" != 0 ]; then
    say "debootstrap needs root; run: sudo $0 $*" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/descent-rootfs.XXXXXX")
[ -d "$root" ] && [ "$root" != / ] || exit 1
# The root file system is a few hundred MiB; it goes whatever happens.
trap 'rm -rf "$root" "$root.log"' EXIT
trap 'exit 130' INT TERM

say "debootstrap --variant=minbase $suite into $root"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    exit 1
}

# Slim: dpkg never installs documentation, manuals or translations (the
# copyright files stay), as in the official image.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$root/usr/share/man/"* "$root/usr/share/groff/"* "$root/usr/share/info/"* \
    "$root/usr/share/lintian/"* "$root/usr/share/linda/"*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
    -exec rm -rf {} + 2>/dev/null || true

# apt keeps no .deb files, downloads no translations and needs no
# Recommends by default in containers (as the official image sets up).
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"

rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# Docker provides these per container; the image must not carry the host's.
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin \
    "$root/var/cache/apt/archives/"*.deb "$root/var/log/"*.log \
    "$root/var/log/apt/"* "$root/tmp/"* "${root:?}/dev/"*
: >"$root/etc/machine-id"
: >"$root/etc/resolv.conf"
echo localhost >"$root/etc/hostname"

say "importing as $tag"
tar --numeric-owner --xattrs -C "$root" -c . |
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --change "LABEL org.opencontainers.image.description=\"$suite minbase, bootstrapped locally by descent deploy/bootstrap-base.sh from $mirror\"" \
        --message "debootstrap --variant=minbase $suite $mirror" \
        - "$tag" >/dev/null
docker image ls "$tag"

#!/usr/bin/env bash
# CI only: build local STAND-INS for the registry images the project's Dockerfiles and compose file
# name, on a machine where no image registry is reachable (Debian and PyPI are). Real users never
# run this: `docker compose build` pulls the official images (python:3.11-slim,
# locustio/locust:2.47.0, postgres:16-alpine). See docker/ci/README.md.
#
# The stand-ins get their own names (memsoak-ci/...), never the official ones, so they cannot be
# mistaken for, or shadow, a real pulled image; CI points the Dockerfiles at them with the
# PYTHON_IMAGE / LOCUST_IMAGE / POSTGRES_IMAGE variables docker-compose.yml already takes.
#
#   MEMSOAK_DOCKER_CACHE  where the Debian root filesystem tarball is kept between runs on the same
#                         machine (default /var/cache/memsoak-docker-ci); delete it to start over.
#   DOCKER                the docker client (default: docker on PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docker=${DOCKER:-docker}
cache=${MEMSOAK_DOCKER_CACHE:-/var/cache/memsoak-docker-ci}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"

# What the official python:3.11-slim holds that a Debian minbase lacks: Python 3.11 (bookworm's),
# venv/ensurepip, its headers (Python.h, so a C extension can build in a stage with gcc) and the CA
# bundle. The host's extra CA certificates (a TLS-intercepting proxy, as here) are trusted too, and
# pip is told to use the system bundle, or pip inside `docker build` could not reach PyPI.
packages=ca-certificates,python3,python3-venv,python3-dev,netbase,tzdata
extra_cas=$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | sort || true)
# The tarball and image are reused while the package list, mirror, hooks and CAs stay the same.
# shellcheck disable=SC2016  # $1 in the hooks is mmdebstrap's (the chroot), expanded by it
hooks=(
  --customize-hook='for c in /usr/local/share/ca-certificates/*.crt; do [ -e "$c" ] && cp "$c" "$1/usr/local/share/ca-certificates/"; done; chroot "$1" update-ca-certificates >/dev/null'
  --customize-hook='printf "[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n" > "$1/etc/pip.conf"'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
)
key=$( { echo "$packages $mirror ${hooks[*]}"; for f in $extra_cas; do cat "$f"; done; } | sha256sum | cut -c1-12)
rootfs="$cache/bookworm-python-$key.tar"
base="memsoak-ci/bookworm-python:$key"

t0=$(date +%s)
if "$docker" image inspect "$base" >/dev/null 2>&1; then
  echo "stand-in base $base: cached image"
else
  if [ ! -s "$rootfs" ]; then
    echo "stand-in base: mmdebstrap bookworm minbase ($packages) -> $rootfs"
    rm -rf "$cache"/bookworm-python-*  # an older key's tarball, or an interrupted one
    mmdebstrap --quiet --variant=minbase --include="$packages" "${hooks[@]}" \
      bookworm "$rootfs.tmp.tar" "$mirror"  # mmdebstrap picks the format from the .tar suffix
    mv "$rootfs.tmp.tar" "$rootfs"
  else
    echo "stand-in base: cached root filesystem $rootfs"
  fi
  "$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$rootfs" "$base" >/dev/null
fi
echo "stand-in base ready in $(( $(date +%s) - t0 )) s"

build() {  # build TAG DOCKERFILE: one stand-in from docker/ci/, timed
  local t
  t=$(date +%s)
  "$docker" build --quiet --build-arg "BASE=$base" -t "$1" -f "$here/$2" "$here" >/dev/null
  echo "stand-in $1 built in $(( $(date +%s) - t )) s ($("$docker" image inspect -f '{{.Size}}' "$1" | awk '{printf "%d MB", $1/1e6}'))"
}
build memsoak-ci/python:3.11-slim python.Dockerfile
build memsoak-ci/locust:2.47.0 locust.Dockerfile
build memsoak-ci/postgres:16-alpine postgres.Dockerfile

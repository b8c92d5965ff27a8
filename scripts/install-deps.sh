#!/bin/sh
# Installs the Debian 12 packages orch builds and tests with, only when
# something is missing. Idempotent: a machine that has everything exits at
# once without touching apt. sudo is used only when not root.
set -eu

# pkg-config module -> Debian package. BLIS has no .pc file and MPI is found
# through mpicc, so those two are checked by file below.
MODULES="sqlite3:libsqlite3-dev lua5.4:liblua5.4-dev libarchive:libarchive-dev
cmocka:libcmocka-dev jansson:libjansson-dev libxxhash:libxxhash-dev
libcrypto:libssl-dev"

missing=""
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
for pair in $MODULES; do
    module=${pair%%:*}
    package=${pair#*:}
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "$module"; then
        missing="$missing $package"
    fi
done
command -v mpicc >/dev/null 2>&1 || missing="$missing libopenmpi-dev openmpi-bin"
[ -e /usr/include/x86_64-linux-gnu/blis.h ] || [ -e /usr/include/blis.h ] ||
    [ -e /usr/include/blis/blis.h ] || missing="$missing libblis-dev"

if [ -z "$missing" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
echo "orch: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

#!/bin/sh
# Installs the Debian 12 packages orch builds and tests with, only when
# something is missing. Idempotent: a machine that has everything exits at
# once without touching apt. sudo is used only when not root.
#
#   scripts/install-deps.sh          what make run / test / bench need
#   scripts/install-deps.sh --fuzz   and clang with libFuzzer (make fuzz)
#   scripts/install-deps.sh --browser  and Chromium (make test: the report's
#                                    browser test, tests/test_cli_report_browser.c)
#
# Chromium is best effort: when it cannot be installed (no network, no
# sudo) the script says so and succeeds, and the browser test is skipped
# with the reason printed; everything else missing is an error.
#
# The Makefile runs it once per make invocation. Open MPI is linked (orch
# sweep under mpirun/srun: libopenmpi-dev) and its mpirun runs the sweep
# tests (openmpi-bin). libpng and libjpeg (libjpeg-turbo, the library Debian's
# Pillow links) decode image data sets; libarchive reads and writes tar
# shards (core/shards*.c) and bundles (orch export, import, replay:
# store/bundle_*.c).
set -eu

fuzz=0
browser=0
for arg in "$@"; do
    case "$arg" in
    --fuzz) fuzz=1 ;;
    --browser) browser=1 ;;
    *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

# pkg-config module -> Debian package. BLIS has no .pc file and MPI is found
# through mpicc, so those two are checked by file below.
MODULES="sqlite3:libsqlite3-dev lua5.4:liblua5.4-dev libarchive:libarchive-dev
cmocka:libcmocka-dev jansson:libjansson-dev libxxhash:libxxhash-dev
libcrypto:libssl-dev libpng:libpng-dev libjpeg:libjpeg62-turbo-dev"

missing=""
if command -v pkg-config >/dev/null 2>&1; then
    # One pkg-config call when everything is there (the common case);
    # module by module only to name what is missing.
    all=""
    for pair in $MODULES; do all="$all ${pair%%:*}"; done
    # shellcheck disable=SC2086
    if ! pkg-config --exists $all; then
        for pair in $MODULES; do
            pkg-config --exists "${pair%%:*}" || missing="$missing ${pair#*:}"
        done
    fi
else
    missing="pkg-config"
    for pair in $MODULES; do missing="$missing ${pair#*:}"; done
fi
command -v mpicc >/dev/null 2>&1 || missing="$missing libopenmpi-dev"
command -v mpirun >/dev/null 2>&1 || missing="$missing openmpi-bin"
[ -e /usr/include/x86_64-linux-gnu/blis.h ] || [ -e /usr/include/blis.h ] ||
    [ -e /usr/include/blis/blis.h ] || missing="$missing libblis-dev"
if [ "$fuzz" = 1 ]; then
    # clang-14 is Debian 12's clang; libFuzzer (libclang_rt.fuzzer) is in
    # libclang-rt-14-dev, the OpenMP runtime clang links in libomp-14-dev.
    command -v clang-14 >/dev/null 2>&1 || missing="$missing clang-14"
    ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
        missing="$missing libclang-rt-14-dev"
    [ -e /usr/lib/llvm-14/lib/libomp.so ] || missing="$missing libomp-14-dev"
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi

# Debian 12's package is `chromium` (the binary too); apt-get update first
# when it is not known yet. Failure only skips the browser test.
if [ "$browser" = 1 ] && ! command -v chromium >/dev/null 2>&1 &&
    ! command -v chromium-browser >/dev/null 2>&1; then
    echo "orch: installing: chromium (for the report's browser test)" >&2
    if ! { DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            chromium >/dev/null; }; then
        echo "orch: could not install chromium: the browser test will be skipped" >&2
    fi
fi

if [ -z "$missing" ]; then
    exit 0
fi
echo "orch: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

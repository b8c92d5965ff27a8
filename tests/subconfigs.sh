#!/bin/sh
# make test-subconfigs: the whole suite once per BLIS sub-configuration this
# CPU can run (BLIS_ARCH_TYPE forced), then one counted line over all of them:
#   "N passed, N failed"
# The sub-configurations it cannot run are named with the reason by
# test_kernel_subconfigs, which `make test` runs as part of the suite.
# A run with failures prints the failed tests and their lines.
set -u
BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
list=$("$BUILD/tests/test_kernel_subconfigs" --list) || exit 1
logs=$(mktemp -d)
passed=0
failed=0
for name in $list; do
    BLIS_ARCH_TYPE=$name sh tests/run.sh "$BUILD" >"$logs/$name.log" 2>&1
    line=$(tail -n 1 "$logs/$name.log")
    echo "BLIS_ARCH_TYPE=$name: $line"
    grep -E '^\[  FAILED  \] test_|^\[   LINE   \]|^ERROR|without a cmocka failure' "$logs/$name.log" |
        sed 's/^/    /'
    p=$(echo "$line" | awk '{print $1 + 0}')
    f=$(echo "$line" | awk '{print $3 + 0}')
    case "$line" in *" passed, "*" failed") ;; *) f=$((f + 1)) ;; esac
    passed=$((passed + p))
    failed=$((failed + f))
done
rm -rf "$logs"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Runs every test binary of a build and ends with one counted line:
#   "N passed, N failed"
# Each binary is a cmocka program; its own "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s)" lines are summed. A binary that dies without
# reporting (a crash, a sanitizer abort) counts as one failure.
set -u
BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
case "$BUILD" in
/*) ORCH_BIN="$BUILD/orch" ;; # make BUILD=/tmp/x test
*) ORCH_BIN="$top/$BUILD/orch" ;;
esac
export ORCH_BIN
# Tests never write the user's store.
ORCH_DB=/nonexistent/orch-tests-must-pass-db.db
export ORCH_DB
# Tests compare runs made by separate orch processes; without a count each
# would take the cores free at its start (docs/threads.md), which a loaded
# machine changes between two runs, and sums are split by thread.
: "${ORCH_THREADS:=2}"
export ORCH_THREADS
passed=0
failed=0
logdir=$(mktemp -d)
for bin in "$BUILD"/tests/test_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    log="$logdir/$name.log"
    "$bin" >"$log" 2>&1
    rc=$?
    cat "$log"
    # cmocka writes to stdout and stderr; lines may interleave, so match anywhere
    p=$(grep -o '\[  PASSED  \] [0-9][0-9]* test' "$log" | awk '{s+=$4} END {print s+0}')
    f=$(grep -o '\[  FAILED  \] [0-9][0-9]* test' "$log" | awk '{s+=$4} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$name: exited $rc without a cmocka failure report: counted as 1 failure"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done
rm -rf "$logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

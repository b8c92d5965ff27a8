#!/bin/sh
# Runs every fuzz target of a build for a fixed time and ends with one
# counted line, "fuzz: N passed, N failed" (a target passes when it ran its
# time without a crash, leak, sanitizer report, timeout or out-of-memory).
#
#   tests/fuzz/run.sh BUILD SECONDS [TARGET...]
#
# (every target of BUILD/fuzz/ when no TARGET, e.g. fuzz_npy, is named)
#
# Each target fuzzes BUILD/fuzz/corpus/TARGET (its working corpus, kept
# between runs) seeded from the committed tests/fuzz/corpus/TARGET, which it
# only reads. A failing input is left in BUILD/fuzz/crashes/TARGET/ and its
# path printed; replay it with "BUILD/fuzz/TARGET PATH".
set -u
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-60}
shift 2 2>/dev/null || shift $#
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
# 2 GiB: far above what a reader needs (the DSL's Lua state is capped at
# 256 MiB) and leaves room for two targets at once on a 24 GiB machine.
RSS_MB=2048
# Per input. The DSL's instruction limit ends the slowest inputs (endless
# loops) in a few seconds under the sanitizers.
TIMEOUT_S=30
# The targets' temporary files (tests/fuzz/fuzz_file.h) go to a directory
# removed at the end even when a target dies without cleaning up.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$shm/orch-fuzz-run.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
if [ $# -eq 0 ]; then
    for f in "$BUILD"/fuzz/fuzz_*; do
        [ -f "$f" ] && [ -x "$f" ] && set -- "$@" "$f"
    done
fi
for target in "$@"; do
    name=$(basename "$target")
    bin="$BUILD/fuzz/$name"
    if [ ! -x "$bin" ]; then
        echo "$name: no such fuzz target in $BUILD/fuzz"
        failed=$((failed + 1))
        continue
    fi
    seeds="tests/fuzz/corpus/${name#fuzz_}"
    work="$BUILD/fuzz/corpus/${name#fuzz_}"
    crashes="$BUILD/fuzz/crashes/${name#fuzz_}"
    mkdir -p "$work" "$crashes" "$BUILD/fuzz/logs"
    log="$BUILD/fuzz/logs/$name.log"
    echo "== $name: ${SECONDS_EACH}s, seeds $seeds"
    TMPDIR="$scratch" "$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" \
        -timeout="$TIMEOUT_S" -artifact_prefix="$crashes/" -print_final_stats=1 \
        "$work" "$seeds" >"$log" 2>&1
    rc=$?
    # The last status line and the final stats: executions, rate, coverage.
    grep -E '^#[0-9]+' "$log" | tail -n 1
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        # libFuzzer's own report: the sanitizer's first lines and the input.
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -n 5
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "$name: FAILED (exit $rc); log $log"
        [ -n "$artifact" ] && echo "$name: failing input: $artifact"
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

#!/bin/sh
# Runs the whole suite N times in a row (default 20) while `make bench`
# loads the machine, and stops at the first failure. This is how the "not
# flaky on a loaded 2-core machine" promise of docs/testing.md is checked:
#
#   sh scripts/soak.sh [N]
#
# Each pass's log is kept in a temporary folder (printed at the end) so a
# failure can be read. Exit 0 only when all N passes passed.
set -u
N=${1:-20}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
logs=$(mktemp -d "${TMPDIR:-/tmp}/orch-soak.XXXXXX") || exit 1
make --no-print-directory test >"$logs/build.log" 2>&1 || {
    echo "soak: the first make test failed; see $logs/build.log"
    exit 1
}
# The load: the benchmarks, over and over, in a process group of their own
# so that stopping it stops the benchmark running at that moment too.
setsid sh -c 'while :; do make --no-print-directory bench; done' >>"$logs/bench.log" 2>&1 &
load=$!
stop_load() {
    kill -- "-$load" 2>/dev/null
    wait "$load" 2>/dev/null
}
trap stop_load EXIT INT TERM
ok=0
i=1
while [ "$i" -le "$N" ]; do
    if make --no-print-directory test >"$logs/pass-$i.log" 2>&1; then
        ok=$((ok + 1))
        echo "soak: pass $i/$N: $(tail -n 1 "$logs/pass-$i.log")"
    else
        echo "soak: pass $i/$N FAILED: $(tail -n 1 "$logs/pass-$i.log") (log: $logs/pass-$i.log)"
        break
    fi
    i=$((i + 1))
done
echo "soak: $ok of $N passes in a row under load; logs in $logs"
[ "$ok" -eq "$N" ]

#!/bin/sh
# scripts/bench.sh BUILD [--quick] PROGRAM... - what `make bench` runs.
#
# Runs every bench program (BUILD/bench/machine first: the kernel choice and
# the FMA peak), each one's output shown and written to BUILD/bench/out/NAME.txt
# (replaced only when the program succeeds, so a failed run leaves the last good
# output for the doc generator). Exits 1 on the first failing program.
set -u
build=$1
shift
quick=
if [ "${1:-}" = --quick ]; then
    quick=--quick
    shift
fi
out=$build/bench/out
mkdir -p "$out"

run_one() {
    name=$(basename "$1")
    echo "== $1 $quick"
    # the status of the program, not of tee: through a file (POSIX sh has no pipefail)
    ("$1" $quick; echo $? >"$out/$name.rc") | tee "$out/$name.txt.part"
    status=$(cat "$out/$name.rc")
    rm -f "$out/$name.rc"
    if [ "$status" != 0 ]; then
        echo "bench: $1 failed (exit $status); $out/$name.txt keeps the previous output" >&2
        rm -f "$out/$name.txt.part"
        exit 1
    fi
    mv "$out/$name.txt.part" "$out/$name.txt"
}

for prog in "$@"; do
    [ "$(basename "$prog")" = machine ] && run_one "$prog"
done
for prog in "$@"; do
    [ "$(basename "$prog")" = machine ] || run_one "$prog"
done

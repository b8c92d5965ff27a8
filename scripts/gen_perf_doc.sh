#!/bin/sh
# scripts/gen_perf_doc.sh TEMPLATE REASONS OUTPUT [BENCH_OUTPUT.txt...]
#
# Regenerates docs/performance.md (`make bench-doc`; `make bench` and
# `make bench-torch` run it at their end) from
#   TEMPLATE   docs/performance.md.in: hand-written prose with placeholders,
#   REASONS    bench/why-missed.txt: `id<TAB>reason` per line, why a figure
#              is MISSED ("#" starts a comment; `*` in an id matches any run
#              of characters, e.g. `step.*.t2.vs_gemm`; the first matching
#              line wins),
#   the outputs of the bench programs (build/bench/out/*.txt), whose
#              `FIGURE<TAB>id<TAB>value<TAB>unit<TAB>target<TAB>verdict<TAB>description`
#              lines are the figures; every other line is the human output.
# Placeholders (alone on a line):
#   @@SUMMARY@@          "N met, M MISSED, K info", the outputs read and their dates
#   @@MACHINE@@          the human output of bench/machine (kernel choice, FMA peak)
#   @@OUTPUT name@@      the human output of build/bench/out/name.txt, in a code block
#   @@FIGURES prefix@@   a table of the figures whose id starts with prefix
#   @@OTHER_FIGURES@@    a table of the figures no @@FIGURES@@ line took
#   @@MISSED@@           every MISSED figure with its reason
# A MISSED figure without a reason reads "MISSED (no reason recorded)" and
# draws a warning on stderr. Prints "N met, M MISSED" on stdout. POSIX sh and
# awk only: the build never needs python.
set -u
if [ $# -lt 3 ]; then
    echo "usage: gen_perf_doc.sh TEMPLATE REASONS OUTPUT [BENCH_OUTPUT.txt...]" >&2
    exit 2
fi
template=$1
reasons=$2
output=$3
shift 3
[ -r "$template" ] || { echo "gen_perf_doc: cannot read $template" >&2; exit 2; }
[ -r "$reasons" ] || { echo "gen_perf_doc: cannot read $reasons" >&2; exit 2; }

# "name<TAB>date" of each output, for @@SUMMARY@@
dates=
for f in "$@"; do
    dates="$dates$(basename "$f" .txt)	$(date -u -r "$f" '+%Y-%m-%d %H:%M UTC');"
done

tmp="$output.tmp.$$"
awk -v reasons_file="$reasons" -v template_file="$template" -v dates="$dates" \
    -v summary_file="$tmp.summary" '
BEGIN { FS = "\t"; n_fig = 0; n_reason = 0; n_out = 0 }

FILENAME == reasons_file {
    if ($0 ~ /^[ \t]*#/ || $0 ~ /^[ \t]*$/ || NF < 2) next
    n_reason++; reason_id[n_reason] = $1; reason_text[n_reason] = $2
    next
}

FILENAME != template_file {
    name = FILENAME; sub(/.*\//, "", name); sub(/\.txt$/, "", name)
    if (!(name in out_seen)) { out_seen[name] = 1; n_out++; out_name[n_out] = name }
    if ($1 == "FIGURE" && NF >= 7) {
        id = $2
        if (!(id in fig_index)) { n_fig++; fig_index[id] = n_fig; fig_id[n_fig] = id }
        i = fig_index[id]
        fig_value[i] = $3; fig_unit[i] = $4; fig_target[i] = $5; fig_verdict[i] = $6
        fig_desc[i] = $7
    } else {
        human[name] = human[name] $0 "\n"
    }
    next
}

# the template: remember its lines; the placeholders are expanded at the end,
# once every figure is known (@@OTHER_FIGURES@@ needs all @@FIGURES@@ prefixes)
{
    n_tpl++; tpl[n_tpl] = $0
    if ($0 ~ /^@@FIGURES [^@]*@@$/) {
        p = $0; sub(/^@@FIGURES /, "", p); sub(/@@$/, "", p)
        n_prefix++; prefix[n_prefix] = p
    }
}

function reason_for(id,    r, pat) {
    for (r = 1; r <= n_reason; r++) {
        pat = reason_id[r]
        if (pat == id) return reason_text[r]
        if (index(pat, "*") > 0) {
            # a glob: "*" is any run of characters, everything else literal
            gsub(/[][\\.^$+?(){}|]/, "\\\\&", pat)
            gsub(/\*/, ".*", pat)
            if (id ~ ("^" pat "$")) return reason_text[r]
        }
    }
    return ""
}

function verdict_cell(i,    why) {
    if (fig_verdict[i] == "met") return "met"
    if (fig_verdict[i] == "info") return "-"
    why = reason_for(fig_id[i])
    if (why == "") return "**MISSED** (no reason recorded)"
    return "**MISSED**: " why
}

function md(s) { gsub(/\|/, "\\|", s); return s }

function table_head() {
    print "| figure | value | unit | target | verdict | what |"
    print "|---|---|---|---|---|---|"
}

function table_row(i) {
    printf "| `%s` | %s | %s | %s | %s | %s |\n", fig_id[i], fig_value[i], md(fig_unit[i]),
        (fig_target[i] == "-" ? "-" : md(fig_target[i])), md(verdict_cell(i)), md(fig_desc[i])
    taken[i] = 1
}

function figures(p,    i, any) {
    any = 0
    for (i = 1; i <= n_fig; i++)
        if (substr(fig_id[i], 1, length(p)) == p) {
            if (!any) table_head()
            any = 1
            table_row(i)
        }
    if (!any) print "(no figure `" p "*` in the bench outputs: not run)"
}

function other_figures(    i, j, mine, any) {
    any = 0
    for (i = 1; i <= n_fig; i++) {
        mine = 0
        for (j = 1; j <= n_prefix; j++)
            if (substr(fig_id[i], 1, length(prefix[j])) == prefix[j]) mine = 1
        if (mine) continue
        if (!any) table_head()
        any = 1
        table_row(i)
    }
    if (!any) print "(none)"
}

function output_block(name) {
    if (!(name in human)) {
        print "(not run: no build/bench/out/" name ".txt)"
        return
    }
    printf "```\n%s```\n", human[name]
}

function summary(    i, met, missed, info, n, parts, k, kv) {
    met = missed = info = 0
    for (i = 1; i <= n_fig; i++) {
        if (fig_verdict[i] == "met") met++
        else if (fig_verdict[i] == "MISSED") missed++
        else info++
    }
    printf "**%d met, %d MISSED** (and %d figures without a target), from ", met, missed, info
    n = split(dates, parts, ";")
    for (k = 1; k <= n; k++) {
        if (parts[k] == "") continue
        split(parts[k], kv, "\t")
        printf "%s`%s` (%s)", (k > 1 ? ", " : ""), kv[1], kv[2]
    }
    print "."
}

function missed_list(    i, why, any) {
    any = 0
    for (i = 1; i <= n_fig; i++) {
        if (fig_verdict[i] != "MISSED") continue
        any = 1
        why = reason_for(fig_id[i])
        printf "- `%s` = %s %s (target %s): %s\n", fig_id[i], fig_value[i], fig_unit[i],
            fig_target[i], (why == "" ? "MISSED (no reason recorded)" : why)
    }
    if (!any) print "(none: every figure with a target is met)"
}

END {
    for (t = 1; t <= n_tpl; t++) {
        line = tpl[t]
        if (line == "@@SUMMARY@@") summary()
        else if (line == "@@MACHINE@@") output_block("machine")
        else if (line ~ /^@@OUTPUT [^@]*@@$/) {
            name = line; sub(/^@@OUTPUT /, "", name); sub(/@@$/, "", name); output_block(name)
        } else if (line ~ /^@@FIGURES [^@]*@@$/) {
            p = line; sub(/^@@FIGURES /, "", p); sub(/@@$/, "", p); figures(p)
        } else if (line == "@@OTHER_FIGURES@@") other_figures()
        else if (line == "@@MISSED@@") missed_list()
        else print line
    }
    met = missed = 0
    for (i = 1; i <= n_fig; i++) {
        if (fig_verdict[i] == "met") met++
        if (fig_verdict[i] == "MISSED") {
            missed++
            if (reason_for(fig_id[i]) == "")
                printf "gen_perf_doc: warning: %s is MISSED and has no reason in %s\n",
                    fig_id[i], reasons_file > "/dev/stderr"
        }
    }
    printf "%d met, %d MISSED\n", met, missed > summary_file
}
' "$reasons" "$@" "$template" >"$tmp" || { rm -f "$tmp" "$tmp.summary"; exit 1; }
mv "$tmp" "$output"
echo "docs: $output regenerated from $# bench output(s)"
cat "$tmp.summary"
rm -f "$tmp.summary"

#!/usr/bin/env bash
# scripts/bench-hafnium.sh: the side-by-side comparison with Hafnium's page-table
# code (issue 12), as one command.
#
# Runs hafnium-mm-bench (Hafnium's own mm.c built for this host, see its README)
# and `hv-bench p2m` alternately, ROUNDS times each, keeps every round's raw output
# in OUT, and prints per workload row the minimum of each tool over the rounds,
# the ratio ours / Hafnium and the issue's goal for it. This machine class is
# shared and noisy: a process of either tool can run its whole life in a slow
# mode, so a ratio means something only from many alternated rounds of one sitting.
#
#   HAFNIUM_BENCH=~/.cache/hafnium-bench/build/assert1-lto/bench scripts/bench-hafnium.sh
#   HAFNIUM_SRC=<hafnium checkout> MM_BENCH=<dir of hafnium-mm-bench> scripts/bench-hafnium.sh
#       (builds the assert1-lto variant first, into ~/.cache/hafnium-bench/build)
#   ROUNDS=10 (default)  PIN=<cpu> (taskset both tools to one CPU)  OUT=build/bench-hafnium
#   SUMMARY_ONLY=1: summarise the rounds already in OUT.
#
# Exit status: 0 when every row with a goal is at or under it, 1 otherwise, 2 on
# a usage or build error.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-10}
OUT=${OUT:-build/bench-hafnium}
PIN=${PIN:-}
HAFNIUM_BENCH=${HAFNIUM_BENCH:-}

fail() { echo "bench-hafnium: $*" >&2; exit 2; }

if [ -z "${SUMMARY_ONLY:-}" ]; then
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || fail "ROUNDS must be a positive number (got '$ROUNDS')"
    if [ -z "$HAFNIUM_BENCH" ]; then
        [ -n "${HAFNIUM_SRC:-}" ] && [ -n "${MM_BENCH:-}" ] ||
            fail "set HAFNIUM_BENCH to a hafnium-mm-bench binary, or HAFNIUM_SRC and MM_BENCH to build one"
        build="$HOME/.cache/hafnium-bench/build"
        VARIANTS=assert1-lto REPEATS=1 "$MM_BENCH/build-and-run.sh" "$HAFNIUM_SRC" "$build" >/dev/null ||
            fail "hafnium-mm-bench did not build"
        HAFNIUM_BENCH="$build/assert1-lto/bench"
    fi
    [ -x "$HAFNIUM_BENCH" ] || fail "$HAFNIUM_BENCH is not an executable"
    swift build -c release --product hv-bench >/dev/null || fail "hv-bench did not build"
    ours="$(swift build -c release --product hv-bench --show-bin-path)/hv-bench"
    pin=()
    [ -z "$PIN" ] || pin=(taskset -c "$PIN")
    mkdir -p "$OUT"
    # Only this script's own files: OUT may be any directory.
    rm -f "$OUT"/hafnium-*.txt "$OUT"/ours-*.txt
    for r in $(seq "$ROUNDS"); do
        "${pin[@]}" "$HAFNIUM_BENCH" > "$OUT/hafnium-$r.txt"
        "${pin[@]}" "$ours" --hafnium "$OUT/hafnium-$r.txt" p2m > "$OUT/ours-$r.txt"
        echo "round $r of $ROUNDS done" >&2
    done
fi

ls "$OUT"/ours-*.txt >/dev/null 2>&1 || fail "no rounds in $OUT"

# Rows are keyed "<letter> <phase>": hafnium-mm-bench prints
#   c) map 2M x 512   calls=512 ... ns/call=46.0 table_pages=5
# and hv-bench (each continuation row repeats its letter)
#   c)  1 GiB as 512 x 2M calls   map   0.05   27.93   516   2   1   0.61
# whose ns/call is the second number after the phase word (the first is "-" on
# the b' row, whose description also holds the word "pair").
awk -v rounds="$(ls "$OUT"/ours-*.txt | wc -l)" '
    function keep(table, key, value) {
        if (!(key in table) || value < table[key]) table[key] = value
    }
    FILENAME ~ /hafnium-[0-9]+\.txt$/ && $1 ~ /^[a-d]'"'"'?\)$/ && match($0, /ns\/call=[0-9.]+/) {
        keep(haf, substr($1, 1, length($1) - 1) " " $2, substr($0, RSTART + 8, RLENGTH - 8) + 0)
    }
    FILENAME ~ /ours-[0-9]+\.txt$/ && $1 ~ /^[a-d]'"'"'?\)$/ {
        for (i = 2; i <= NF - 2; i++)
            if (($i == "map" || $i == "unmap" || $i == "pair") && $(i + 1) ~ /^([0-9.]+|-)$/ &&
                $(i + 2) ~ /^[0-9.]+$/) {
                phase = ($i == "pair") ? "map+unmap" : $i
                keep(ours, substr($1, 1, length($1) - 1) " " phase, $(i + 2) + 0)
                break
            }
    }
    END {
        # The issue-12 goals (ours / Hafnium); b'"'"' has none, the single b) call is
        # at clock resolution on both sides.
        goal["a map"] = 0.25; goal["a unmap"] = 0.25
        goal["c map"] = 0.7;  goal["c unmap"] = 0.7
        goal["d map"] = 0.5;  goal["d unmap"] = 0.5
        n = split("a map,a unmap,b'"'"' map+unmap,c map,c unmap,d map,d unmap", rows, ",")
        printf "minimum over %d alternated rounds, ns per call\n", rounds
        printf "%-14s %10s %10s %7s %6s\n", "row", "hafnium", "ours", "ratio", "goal"
        missed = 0; shown = 0
        for (k = 1; k <= n; k++) {
            key = rows[k]
            if (!(key in haf) || !(key in ours)) continue
            shown++
            ratio = ours[key] / haf[key]
            verdict = ""
            if (key in goal) {
                verdict = (ratio <= goal[key]) ? "met" : "MISSED"
                if (ratio > goal[key]) missed++
            }
            printf "%-14s %10.2f %10.2f %7.2f %6s %s\n", key, haf[key], ours[key], ratio,
                   (key in goal) ? sprintf("%.2f", goal[key]) : "-", verdict
        }
        if (shown == 0) { print "bench-hafnium: no row found in both outputs"; exit 2 }
        printf "bench-hafnium: %d of the goal rows missed\n", missed
        exit missed ? 1 : 0
    }' "$OUT"/hafnium-*.txt "$OUT"/ours-*.txt

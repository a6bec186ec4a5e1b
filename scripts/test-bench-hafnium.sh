#!/usr/bin/env bash
# The summary of scripts/bench-hafnium.sh over canned rounds in both tools'
# formats: the minimum of each row over the rounds, the ratio and the verdict
# against the issue's goal, the exit status, and the errors for no rounds.
set -u
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failed=0
check() {  # check <name> <expected exit> <output dir> <regex>...
    local name=$1 want=$2 dir=$3 out rc
    shift 3
    out=$(SUMMARY_ONLY=1 OUT="$dir" "$here/bench-hafnium.sh" 2>&1); rc=$?
    if [ "$rc" != "$want" ]; then echo "[FAIL] bench-hafnium: $name: exit $rc, expected $want"; echo "$out"; failed=1; return; fi
    for re in "$@"; do
        if ! grep -Eq "$re" <<<"$out"; then
            echo "[FAIL] bench-hafnium: $name: no line matches '$re'"; echo "$out"; failed=1; return
        fi
    done
    echo "[PASS] bench-hafnium: $name"
}
hafnium() {  # hafnium <file> <a map> <a unmap> <b' pair> <c map> <c unmap> <d map> <d unmap>
    cat >"$1" <<EOF
a) map 4K x 262144               calls=262144 pages=262144 best_ns=1 ns/page=69.6 ns/call=$2 table_pages=517
a) unmap 4K x 262144             calls=262144 pages=262144 best_ns=1 ns/page=64.6 ns/call=$3 table_pages=517
b) map 1G x 1                    calls=1 pages=262144 best_ns=40 ns/page=0.0002 ns/call=40.0 table_pages=4
b') map+unmap 1G pair x10000     calls=2 pages=262144 best_ns=54 ns/page=0.0002 ns/call=$4 table_pages=4
c) map 2M x 512                  calls=512 pages=262144 best_ns=1 ns/page=0.0898 ns/call=$5 table_pages=5
c) unmap 2M x 512                calls=512 pages=262144 best_ns=1 ns/page=0.0863 ns/call=$6 table_pages=5
d) map 4K x 10000 random/64G     calls=10000 pages=10000 best_ns=1 ns/page=435.6 ns/call=$7 table_pages=8698
d) unmap 4K x 10000 random/64G   calls=10000 pages=10000 best_ns=1 ns/page=266.4 ns/call=$8 table_pages=8698
EOF
}
ours() {  # ours <file> <a map> <a unmap> <b' pair> <c map> <c unmap> <d map> <d unmap>
    cat >"$1" <<EOF
hf  workload                                  phase   ns/page     ns/call  desc writes  tables  TLBI   ratio
a)  262144 x 4K, one call per page              map     $2       $2       262657     515     0    0.16
a)                                            unmap     $3       $3       263170       2     1    0.22
      same, blocks allowed (re-merges)          map     13.65       13.65       264196       2   513       -
c)  1 GiB as 512 x 2M calls                     map      0.05       $5          516       2     1    0.61
c)                                            unmap      0.05       $6         1028       2     2    0.54
b)  1 GiB as one 1G call                        map      0.00      120.00            1       2     0    2.40
d)  10000 x 4K random (xorshift 42)             map    $7    $7        18686    8696     0    0.58
d)                                            unmap    $8    $8        27380       2     1    0.64
b') 1 GiB map+unmap pair x 10000, one P2M      pair         -       $4        20000       2 10000    0.78
EOF
}
mkdir "$tmp/met" "$tmp/missed" "$tmp/empty"
# Round 1 is slow for Hafnium, round 2 slow for us: each minimum comes from a different round.
hafnium "$tmp/met/hafnium-1.txt" 60.0 55.0 30.0 46.0 44.0 460.0 260.0
hafnium "$tmp/met/hafnium-2.txt" 40.0 42.0 15.0 28.0 27.0 335.0 184.0
ours "$tmp/met/ours-1.txt" 6.00 7.00 12.50 16.00 12.50 150.00 60.00
ours "$tmp/met/ours-2.txt" 11.00 14.00 20.00 28.00 24.00 250.00 170.00
check "every goal met" 0 "$tmp/met" \
    '^minimum over 2 alternated rounds' \
    '^a map +40\.00 +6\.00 +0\.15 +0\.25 met$' \
    '^a unmap +42\.00 +7\.00 +0\.17 +0\.25 met$' \
    "^b' map\\+unmap +15\\.00 +12\\.50 +0\\.83 +- *$" \
    '^c map +28\.00 +16\.00 +0\.57 +0\.70 met$' \
    '^c unmap +27\.00 +12\.50 +0\.46 +0\.70 met$' \
    '^d map +335\.00 +150\.00 +0\.45 +0\.50 met$' \
    '^d unmap +184\.00 +60\.00 +0\.33 +0\.50 met$' \
    '^bench-hafnium: 0 of the goal rows missed$'
cp "$tmp/met/hafnium-1.txt" "$tmp/met/hafnium-2.txt" "$tmp/missed/"
ours "$tmp/missed/ours-1.txt" 6.00 7.00 12.50 16.00 12.50 240.00 60.00
ours "$tmp/missed/ours-2.txt" 11.00 14.00 20.00 28.00 24.00 250.00 170.00
check "d map over its goal" 1 "$tmp/missed" \
    '^d map +335\.00 +240\.00 +0\.72 +0\.50 MISSED$' \
    '^c map +28\.00 +16\.00 +0\.57 +0\.70 met$' \
    '^bench-hafnium: 1 of the goal rows missed$'
check "no rounds" 2 "$tmp/empty" '^bench-hafnium: no rounds in '
out=$(ROUNDS=0 HAFNIUM_BENCH=/bin/true OUT="$tmp/unused" "$here/bench-hafnium.sh" 2>&1); rc=$?
if [ "$rc" = 2 ] && grep -q 'ROUNDS must be a positive number' <<<"$out"; then
    echo "[PASS] bench-hafnium: ROUNDS=0 refused"
else
    echo "[FAIL] bench-hafnium: ROUNDS=0: exit $rc"; echo "$out"; failed=1
fi
exit $failed

#!/usr/bin/env bash
# The device tree corpus test: the platform layer (Tools/hv-dtb-corpus, host
# build of Sources/Platform) against an independent reader
# (scripts/dtb-corpus.py, python3-libfdt) on every .dtb of Debian's arm64
# kernel package, fetched once and cached (scripts/debian-arm64.sh).
#
#   scripts/dtb-corpus.sh [DTB_DIR]
# Prints one summary line; fails on a trap, a hang (60 s), a board missing
# from either output, an error that names no node or property, or any
# disagreement.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then
    dir=$1
else
    pkg=$(scripts/debian-arm64.sh kernel)
    dir=$(echo "$pkg"/usr/lib/linux-image-*)
fi
[ -d "$dir" ] || { echo "dtb corpus: no directory $dir"; exit 1; }
swift build -q --product hv-dtb-corpus
bin=$(swift build --show-bin-path)/hv-dtb-corpus
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mapfile -t boards < <(cd "$dir" && find . -name '*.dtb' | sed 's|^\./||' | LC_ALL=C sort)
[ ${#boards[@]} -gt 0 ] || { echo "dtb corpus: no .dtb under $dir"; exit 1; }
rc=0
timeout 60 "$bin" "$dir" "${boards[@]}" >"$out/platform" || rc=$?
[ $rc = 0 ] || { echo "dtb corpus: hv-dtb-corpus exited with status $rc (trap or hang)"; exit 1; }
timeout 60 /usr/bin/python3 scripts/dtb-corpus.py "$dir" "${boards[@]}" >"$out/reference"
/usr/bin/python3 scripts/dtb-corpus.py --compare "$out/platform" "$out/reference" ${#boards[@]}

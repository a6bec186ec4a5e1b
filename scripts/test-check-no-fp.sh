#!/usr/bin/env bash
# The negative test of scripts/check-no-fp.sh: objects that use FP/SIMD must
# be refused with the function named, the same code built the image's way
# (-mgeneral-regs-only; for Embedded Swift -Xcc -mgeneral-regs-only, which
# reaches its code generation too) must pass. CLANG, SWIFTC: the toolchain's.
set -u
CLANG=${CLANG:-clang}
SWIFTC=${SWIFTC:-swiftc}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failed=0
expect() {  # expect <0|1> <name> <object> [function]
    local out rc
    out=$("$here/check-no-fp.sh" "$3" 2>&1); rc=$?
    if [ "$rc" != "$1" ]; then echo "[FAIL] check-no-fp: $2: exit $rc, expected $1"; echo "$out"; failed=1; return; fi
    if [ -n "${4:-}" ] && ! grep -q "function: $4\$" <<<"$out"; then
        echo "[FAIL] check-no-fp: $2: the report does not name $4"; echo "$out"; failed=1; return
    fi
    echo "[PASS] check-no-fp: $2"
}
cat >"$tmp/fp.c" <<'C'
unsigned long scale(unsigned long a, unsigned long b) { return (unsigned long)((double)a / (double)b * 1.5); }
void copy64(unsigned long *restrict d, const unsigned long *restrict s) { for (int i = 0; i < 64; i++) d[i] = s[i]; }
C
printf '    .text\n    .global set_rounding\nset_rounding:\n    msr fpcr, x0\n    ret\n' >"$tmp/fpcr.S"
printf '    .text\n    .global plain\nplain:\n    b.eq 1f\n    add x0, x1, x2\n1:  ret\n' >"$tmp/plain.S"
T="--target=aarch64-none-elf -ffreestanding -nostdlib -O2"
$CLANG $T -c -o "$tmp/fp.o" "$tmp/fp.c" && expect 1 "double arithmetic in C" "$tmp/fp.o" scale
$CLANG $T -c -o "$tmp/fpcr.o" "$tmp/fpcr.S" && expect 1 "an FPCR write in assembly" "$tmp/fpcr.o" set_rounding
$CLANG $T -mgeneral-regs-only -c -o "$tmp/gro.o" "$tmp/fp.c" && expect 0 "the same C with -mgeneral-regs-only" "$tmp/gro.o"
$CLANG $T -c -o "$tmp/plain.o" "$tmp/plain.S" && expect 0 "general-register assembly with branches" "$tmp/plain.o"
cat >"$tmp/fp.swift" <<'SWIFT'
@c(scale_swift) public func scaleSwift(_ a: UInt64, _ b: UInt64) -> UInt64 { UInt64(Double(a) / Double(b) * 1.5) }
SWIFT
S="-swift-version 6 -target aarch64-none-none-elf -enable-experimental-feature Embedded -wmo -parse-as-library -Osize"
$SWIFTC $S -c -o "$tmp/swift-fp.o" "$tmp/fp.swift" && expect 1 "Double arithmetic in Embedded Swift" "$tmp/swift-fp.o" scale_swift
$SWIFTC $S -Xcc -mgeneral-regs-only -c -o "$tmp/swift-gro.o" "$tmp/fp.swift" &&
    expect 0 "the same Swift with -Xcc -mgeneral-regs-only (the image's SWIFTFLAGS)" "$tmp/swift-gro.o"
exit $failed

#!/usr/bin/env bash
# Compile the portable modules in Embedded Swift for aarch64-none-none-elf, in
# dependency order, exactly as the Makefile does (emit-module only). A quick
# check that code written for the host also builds for the board.
#   scripts/embedded-check.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.build-embedded-check}
mkdir -p "$OUT"
FLAGS=(-swift-version 6 -target aarch64-none-none-elf -enable-experimental-feature Embedded -wmo
       -parse-as-library -Osize -Xcc -mgeneral-regs-only -Xfrontend -disable-stack-protector
       -Xfrontend -function-sections -I "$OUT" -I Boot/include)
for m in AArch64 Translation Platform Ownership SMMUv3; do
    ls Sources/$m/*.swift >/dev/null 2>&1 || continue
    echo "embedded: $m"
    swiftc "${FLAGS[@]}" -module-name $m -emit-module -emit-module-path "$OUT/$m.swiftmodule" Sources/$m/*.swift
done
echo "embedded-check: ok"

#!/usr/bin/env bash
# scripts/check-no-fp.sh FILE...: fails (exit 1), naming each function, when
# any instruction in FILE's code touches an FP/SIMD or SVE register (b/h/s/d/q/v,
# z) or FPCR/FPSR/FPMR. Boot/vectors.S saves only the general registers, so
# an EL2 image that used these would corrupt the lower EL's FP/SIMD state on
# every exit; the build keeps it from doing so (-mgeneral-regs-only for C,
# assembly and, through -Xcc, Swift's code generation) and this check proves
# the linked result. OBJDUMP overrides the disassembler.
set -euo pipefail
OBJDUMP=${OBJDUMP:-aarch64-linux-gnu-objdump}
status=0
for file in "$@"; do
    # objdump -d: "<addr> <name>:" opens a function; instruction lines are
    # "addr:<TAB>word<TAB>mnemonic<TAB>operands". Symbol names (<...>) and
    # comments (//) are dropped before the operands are matched.
    hits=$("$OBJDUMP" -d --no-show-raw-insn "$file" | awk '
        /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); next }
        /^ *[0-9a-f]+:\t/ {
            seen++
            n = split($0, f, "\t"); if (n < 2) next
            mnemonic = f[2]; operands = (n >= 3) ? f[3] : ""
            sub(/\/\/.*/, "", operands); gsub(/[0-9a-f]+ <[^>]*>/, "", operands); gsub(/<[^>]*>/, "", operands)
            line = tolower(mnemonic " " operands)
            if (mnemonic ~ /^\./) next
            if (line ~ /(^|[^a-z0-9_.])[bhsdqvz][0-9][0-9]?([^0-9a-z_]|$)/ || line ~ /(^|[^a-z0-9_])fp(cr|sr|mr)([^a-z0-9_]|$)/) {
                print fn ": " $0
            }
        }
        END { if (!seen) print "(no instructions disassembled): " FILENAME }')
    if [ -n "$hits" ]; then
        echo "$file: FP/SIMD instructions in the EL2 image (its exception vectors save only general registers):"
        echo "$hits" | sed 's/^/    /' | head -20
        echo "$hits" | sed 's/: .*//' | sort -u | sed 's/^/    function: /'
        status=1
    fi
done
exit $status

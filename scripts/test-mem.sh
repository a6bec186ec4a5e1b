#!/usr/bin/env bash
# The board's memset, memcpy and memmove (Boot/vectors.S, assembled as the
# image assembles it) checked byte for byte by scripts/test-mem.c on QEMU:
# a bare-metal ELF at EL1 with the MMU on (RAM Normal write-back, as the
# routines find it at EL2: their unaligned accesses need Normal memory),
# reporting through semihosting. Exit status 0 only when every check passed.
# CLANG, LLD: the toolchain's; QEMU: any qemu-system-aarch64.
set -u
CLANG=${CLANG:-clang}
LLD=${LLD:-ld.lld}
QEMU=${QEMU:-qemu-system-aarch64}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/start.S" <<'ASM'
    .section .text.start, "ax"
    .global _start
_start:
    adrp    x0, stack_top
    add     x0, x0, :lo12:stack_top
    mov     sp, x0
    /* One level-1 table, 1 GiB blocks (4 KiB granule, T0SZ = 25): 0-1 GiB
     * Device-nGnRnE (AttrIndx 0), 1-2 GiB (QEMU virt's RAM) Normal
     * write-back inner shareable (AttrIndx 1); AF set. */
    adrp    x0, l1_table
    add     x0, x0, :lo12:l1_table
    mov     x1, #0x401
    str     x1, [x0]
    ldr     x1, =(0x40000000 | 0x401 | (1 << 2) | (3 << 8))
    str     x1, [x0, #8]
    msr     ttbr0_el1, x0
    mov     x0, #0xff00                 /* MAIR_EL1: Attr0 Device-nGnRnE, Attr1 Normal WB */
    msr     mair_el1, x0
    ldr     x0, =(25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))  /* T0SZ, IRGN0, ORGN0, SH0, EPD1 */
    msr     tcr_el1, x0
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x0, =0x30d01805             /* SCTLR_EL1: RES1 | M | C | I, A = 0 */
    msr     sctlr_el1, x0
    isb
    bl      mem_test_main
    adrp    x1, exit_block              /* SYS_EXIT: ADP_Stopped_ApplicationExit, status */
    add     x1, x1, :lo12:exit_block
    mov     x2, #0x26
    movk    x2, #2, lsl #16
    stp     x2, x0, [x1]
    mov     w0, #0x18
    hlt     #0xf000
1:  b       1b

    .global semihost
semihost:
    hlt     #0xf000
    ret

    .bss
    .balign 4096
l1_table: .space 4096
exit_block: .space 16
    .balign 16
    .space 16384
stack_top:
ASM
cat >"$tmp/test.ld" <<'LD'
ENTRY(_start)
SECTIONS {
    . = 0x40080000;
    .text : { *(.text.start) *(.text .text.*) }
    .rodata : { *(.rodata .rodata.*) }
    .data : { *(.data .data.*) }
    .bss : { *(.bss .bss.* COMMON) }
}
LD
T="--target=aarch64-none-elf -ffreestanding -fno-builtin -nostdlib -mgeneral-regs-only -O2 -Wall -Werror"
"$CLANG" $T -c -o "$tmp/start.o" "$tmp/start.S" &&
"$CLANG" $T -I "$root/Boot/include" -c -o "$tmp/vectors.o" "$root/Boot/vectors.S" &&
"$CLANG" $T -c -o "$tmp/test.o" "$here/test-mem.c" &&
"$LLD" -T "$tmp/test.ld" -o "$tmp/test.elf" "$tmp/start.o" "$tmp/vectors.o" "$tmp/test.o" ||
    { echo "[FAIL] test-mem: build"; exit 1; }
timeout 120 "$QEMU" -M virt -cpu max -m 128M -nographic -semihosting -kernel "$tmp/test.elf" </dev/null >"$tmp/out" 2>&1
status=$?
cat "$tmp/out"
if [ "$status" = 0 ]; then echo "[PASS] test-mem: memset, memcpy, memmove (Boot/vectors.S)"
else echo "[FAIL] test-mem: exit status $status"; fi
exit $status

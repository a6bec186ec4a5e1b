/*
 * Boot/vectors.S: the EL2 exception vector table.
 *
 * Every entry saves a full register frame (x0-x30, ELR_EL2, SPSR_EL2,
 * ESR_EL2, FAR_EL2) and calls the Swift handler
 *     hv_exception(frame: UnsafeMutablePointer<UInt64>, kind: UInt64)
 * kind = 4 * group + type, group 0 current EL/SP0, 1 current EL/SPx,
 * 2 lower EL AArch64, 3 lower EL AArch32; type 0 sync, 1 IRQ, 2 FIQ, 3 SError.
 * If the handler returns, the (possibly edited) frame is restored and eret'd.
 *
 * SP_EL0 belongs to the lower EL while it runs (Linux keeps its `current`
 * task pointer there). An exit from a lower EL keeps that value in the frame
 * (word 35) and gives SP_EL0 this CPU's exception stack (its slot, from
 * TPIDR_EL2: Boot/include/host.h), so a fault of EL2 while it serves the exit
 * runs on the hypervisor's own stack; the lower EL's value is put back just
 * before the eret.
 */
#include "host.h"
#define FRAME_SIZE  288     /* 31 GPRs + ELR + SPSR + ESR + FAR + SP_EL0 = 36 words, 16-byte aligned */
#define FRAME_SP_EL0 280
#define KIND_LOWER  8       /* kinds from here on come from a lower EL */

.macro ventry kind
    /* Each entry at its architectural offset; `.org` fails the build if the
     * code placed in the entry before it (vector_lower, vector_restore,
     * vector_save: the table's spare room, rather than code after it) ran
     * into this one. */
    .org    hv_el2_vectors + \kind * 0x80
    .if \kind < 8
    /* An exception of EL2 itself: the handler runs on the exception stack
     * (SP_EL0: this CPU's, set by hv_main, hv_cpu_entry or vector_lower
     * below), so an overflow of a stack into its
     * guard page can be reported; one taken inside that handler (SP0
     * vectors) nests on the same stack. eret restores SPSel from SPSR_EL2. */
    msr     spsel, #0
    .endif
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    .if \kind < KIND_LOWER
    b       vector_common
    .else
    b       vector_lower
    .endif
.endm

    .section .text.vectors, "ax"
    .balign 2048
    .global hv_el2_vectors
hv_el2_vectors:
    ventry 0

/*
 * memset, memcpy and memmove for the Embedded Swift stdlib and the code Swift
 * generates (zeroed structs, struct and InlineArray copies on the P2M and
 * SMMU paths: EMBEDDED.md section 2), each in one entry's spare room (this
 * one, 2 and 3) rather than in code after the table. One shape for all three:
 * from 16 bytes on, bytes up to an 8-byte aligned destination address, then
 * 16 bytes per STP while 16 are left; then one word if 8 are left, and bytes.
 * x2 holds the bytes to go minus 16, so once fewer than 16 are left it is
 * negative and its bits 3:0 say how many. A source aligned differently from
 * the destination, and the word of a call under 16 bytes, are unaligned
 * accesses: Normal memory with SCTLR_EL2.A = 0 (Boot/start.S) allows them,
 * and nothing uses these routines on Device memory. General registers only
 * (scripts/check-no-fp.sh). scripts/test-mem.sh (`make test`) runs them on
 * QEMU against byte loops, every size 0-64 at every alignment.
 */
    .global memset, memcpy, memmove
    .type   memset, %function
memset:
    mov     x3, x0
    and     x1, x1, #0xff
    mov     x4, #0x0101010101010101
    mul     x1, x1, x4                  /* the byte in all eight lanes */
    subs    x2, x2, #16
    b.lo    4f
1:  tst     x3, #7
    b.eq    2f
    strb    w1, [x3], #1
    sub     x2, x2, #1
    b       1b
2:  tbnz    x2, #63, 4f
5:  stp     x1, x1, [x3], #16
    subs    x2, x2, #16
    b.hs    5b
4:  tbz     x2, #3, 6f
    str     x1, [x3], #8
6:  ands    x2, x2, #7
    b.eq    7f
8:  strb    w1, [x3], #1
    subs    x2, x2, #1
    b.ne    8b
7:  ret
    .size   memset, . - memset

    ventry 1

/*
 * uint64_t hv_probe_read32(uint64_t pa, uint32_t *value)
 *
 * One 32-bit load from a device register that may not be there: returns 1
 * and stores the value, or, when the load takes a synchronous external abort
 * (a DTB describing a device the machine lacks), returns 0. The abort is
 * recognised by hv_exception from ELR_EL2 = hv_probe_read32_load, which
 * resumes at x30 with x0 = 0; this routine is a leaf, so x30 is its caller.
 *
 * uint64_t hv_try_semihosting(uint64_t op, uint64_t param)
 *
 * A semihosting call (A64: HLT #0xF000, op in w0, parameter block in x1)
 * made where nothing says whether a debugger or QEMU's -semihosting is
 * there: returns 1 when the call came back, and 0 when HLT was an undefined
 * instruction (no semihosting: QEMU without -semihosting, a board without a
 * halting debugger). The undefined-instruction exception is recognised by
 * hv_exception from ELR_EL2 = hv_try_semihosting_hlt and resumes at x30
 * with x0 = 0; this routine is a leaf, so x30 is its caller.
 *
 * Both in this entry's spare room.
 */
    .global hv_probe_read32, hv_probe_read32_load
hv_probe_read32:
    dsb     sy
hv_probe_read32_load:
    ldr     w2, [x0]
    dsb     sy                          /* an abort is taken here at the latest, not later */
    str     w2, [x1]
    mov     x0, #1
    ret

    .global hv_try_semihosting, hv_try_semihosting_hlt
hv_try_semihosting:
hv_try_semihosting_hlt:
    hlt     #0xf000
    mov     x0, #1
    ret

    ventry 2

/* memcpy: lowest address first. Every step loads all its bytes before it
 * stores any, so this is also memmove's copy for a destination below the
 * source: a step's stores reach only source bytes already read. */
    .type   memcpy, %function
memcpy:
    mov     x3, x0
    subs    x2, x2, #16
    b.lo    4f
1:  tst     x3, #7
    b.eq    2f
    ldrb    w4, [x1], #1
    strb    w4, [x3], #1
    sub     x2, x2, #1
    b       1b
2:  tbnz    x2, #63, 4f
5:  ldp     x4, x5, [x1], #16
    stp     x4, x5, [x3], #16
    subs    x2, x2, #16
    b.hs    5b
4:  tbz     x2, #3, 6f
    ldr     x4, [x1], #8
    str     x4, [x3], #8
6:  ands    x2, x2, #7
    b.eq    7f
8:  ldrb    w4, [x1], #1
    strb    w4, [x3], #1
    subs    x2, x2, #1
    b.ne    8b
7:  ret
    .size   memcpy, . - memcpy

    ventry 3

/* memmove: memcpy when the destination is not above the source; otherwise
 * the same steps from the highest address down (the destination's end
 * aligned first), each again loading before it stores, so a step's stores
 * reach only source bytes already read. */
    .type   memmove, %function
memmove:
    cmp     x0, x1
    b.ls    memcpy
    add     x3, x0, x2                  /* both ends */
    add     x1, x1, x2
    subs    x2, x2, #16
    b.lo    4f
1:  tst     x3, #7
    b.eq    2f
    ldrb    w4, [x1, #-1]!
    strb    w4, [x3, #-1]!
    sub     x2, x2, #1
    b       1b
2:  tbnz    x2, #63, 4f
5:  ldp     x4, x5, [x1, #-16]!
    stp     x4, x5, [x3, #-16]!
    subs    x2, x2, #16
    b.hs    5b
4:  tbz     x2, #3, 6f
    ldr     x4, [x1, #-8]!
    str     x4, [x3, #-8]!
6:  ands    x2, x2, #7
    b.eq    7f
8:  ldrb    w4, [x1, #-1]!
    strb    w4, [x3, #-1]!
    subs    x2, x2, #1
    b.ne    8b
7:  ret
    .size   memmove, . - memmove

    ventry 4
    ventry 5
    ventry 6
    ventry 7
    ventry 8
    ventry 9
    ventry 10
    ventry 11
    ventry 12
    ventry 13

vector_lower:
    stp     x2, x3, [sp, #16]
    mrs     x1, sp_el0
    str     x1, [sp, #FRAME_SP_EL0]     /* the lower EL's */
    mrs     x1, tpidr_el2
    and     x1, x1, #(HV_HOST_MAX_CPUS - 1)
    mov     x2, #(HV_CPU_SLOT_SIZE >> 12)
    mul     x1, x1, x2
    adrp    x3, hv_cpu_stacks
    add     x3, x3, :lo12:hv_cpu_stacks
    add     x1, x3, x1, lsl #12
    add     x1, x1, #HV_CPU_EXCEPTION_STACK_TOP
    msr     sp_el0, x1                  /* this CPU's exception stack */
    b       vector_save

    ventry 14

/* After hv_exception returned: the (possibly edited) frame back, then eret. */
vector_restore:
    cmp     x19, #KIND_LOWER
    b.lo    1f
    ldr     x2, [sp, #FRAME_SP_EL0]
    msr     sp_el0, x2                  /* the lower EL's, back */
1:  ldp     x30, x2, [sp, #240]
    msr     elr_el2, x2
    ldr     x2, [sp, #256]
    msr     spsr_el2, x2
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME_SIZE
    eret

    ventry 15

vector_common:
    stp     x2, x3, [sp, #16]
vector_save:
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el2
    mrs     x3, esr_el2
    stp     x2, x3, [sp, #256]
    mrs     x2, far_el2
    str     x2, [sp, #272]
    mov     x1, x0
    mov     x19, x0                     /* the kind, kept across the call (callee-saved) */
    mov     x0, sp
    bl      hv_exception
    b       vector_restore
    /* The end of the table: everything above fits in it (the build fails otherwise). */
    .org    hv_el2_vectors + 0x800

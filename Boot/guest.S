/*
 * Boot/guest.S: a tiny EL1 guest, run by the hypervisor under a P2M
 * (Sources/Hypervisor/GuestScenario.swift). It is position independent and
 * fits in one page, which the hypervisor maps read-only and executable at the
 * guest's IPA; its data pages are separate frames.
 *
 * The guest runs with its own MMU off (VA = IPA) and speaks through HVC:
 *   x0 = 1 ping            -> x0 = 0x600d
 *   x0 = 2 report, x1 = v  (the hypervisor records v)
 *   x0 = 3 abort seen, x1 = ESR_EL1, x2 = FAR_EL1, x3 = ELR_EL1, x4 = the
 *          vector's offset in VBAR_EL1's table (sent by every vector)
 *   x0 = 0xff done, x1 = its SP_EL0 (set at the start, checked unchanged)
 * and, through SMC (trapped: HCR_EL2.TSC), PSCI CPU_ON and SYSTEM_OFF, whose
 * answers it reports.
 * Data layout (IPA): code at 0x8000_0000, a read-write page at +0x1000, a
 * read-only page at +0x2000, and nothing at +0x10_0000 until the hypervisor
 * populates it on the stage-2 fault. The word at +0x1008 asks for that many
 * extra report calls before done (a bounded-storage test); a non-zero word at
 * +0x1010 makes it try a semihosting exit with status 0 first; the word at
 * +0x1030 is an address in the hypervisor's own memory, which it then writes;
 * a non-zero word at +0x1028 is an IPA it jumps to first (a fetch abort at
 * every step, which the hypervisor must stop after a bound).
 *
 * Its vector table (VBAR_EL1, the second half of the code page) takes the
 * aborts the hypervisor injects for what the guest may not do: a write to
 * the hypervisor's memory and a read of an IPA nothing maps. Every vector
 * reports ESR_EL1, FAR_EL1, ELR_EL1 and its own offset by HVC and resumes
 * after the faulting instruction.
 */
#define HC_PING     1
#define HC_REPORT   2
#define HC_ABORT    3
#define HC_DONE     0xff

    .section .text.guest, "ax"
    .balign 4096
    .global __guest_start, __guest_end
__guest_start:
    movz    x9, #0x5e0e, lsl #16
    movk    x9, #0x1000                 /* SP_EL0 = 0x5e0e1000: must survive every exit */
    msr     sp_el0, x9
    adr     x9, guest_vectors
    msr     vbar_el1, x9
    isb
    mov     x0, #HC_PING
    hvc     #0
    mov     x1, x0                      /* report the ping's answer */
    mov     x0, #HC_REPORT
    hvc     #0

    movz    x10, #0x8000, lsl #16       /* IPA 0x8000_0000 */
    add     x11, x10, #0x1000           /* the read-write page */
    add     x12, x10, #0x2000           /* the read-only page */
    add     x13, x10, #0x100000         /* not mapped yet */

    ldr     x3, [x11, #40]              /* asked to jump to an unmapped IPA first? */
    cbz     x3, 5f
    br      x3                          /* every fetch there aborts; its vector steps on by 4 */
5:  ldr     x3, [x11, #16]              /* asked to try a semihosting exit first? */
    cbz     x3, 4f
    movz    x3, #0x2, lsl #16
    movk    x3, #0x0026                 /* ADP_Stopped_ApplicationExit */
    stp     x3, xzr, [x11, #24]         /* SYS_EXIT_EXTENDED block: reason, status 0 */
    mov     x0, #0x20                   /* SYS_EXIT_EXTENDED */
    add     x1, x11, #24
    hlt     #0xf000                     /* must never end the run as a success */
4:  movz    x2, #0xbeef
    str     x2, [x11]                   /* a write the P2M allows */
    ldr     x1, [x11]
    mov     x0, #HC_REPORT
    hvc     #0                          /* reports 0xbeef */

    str     x2, [x12]                   /* stage-2 permission fault: skipped by the hypervisor */
    ldr     x1, [x12]
    mov     x0, #HC_REPORT
    hvc     #0                          /* reports what the read-only page holds */

    ldr     x1, [x13]                   /* stage-2 translation fault: populated, then retried */
    mov     x0, #HC_REPORT
    hvc     #0                          /* reports the value the hypervisor put there */

    ldr     x4, [x11, #48]              /* an address in the hypervisor's memory */
    str     x2, [x4]                    /* not in the P2M: abort injected, vector reports, resumes here + 4 */
    add     x5, x10, #0x3000            /* an IPA nothing maps, next to the read-only page */
    ldr     x1, [x5]                    /* abort injected (a read), resumes here + 4 */

    /* PSCI by SMC: HCR_EL2.TSC traps it; the hypervisor answers, the firmware never sees it. */
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0003                 /* CPU_ON (SMC64) */
    mov     x1, #1                      /* target MPIDR 1 */
    mov     x2, x10                     /* entry: this code, at EL2 if the call escaped */
    mov     x3, xzr
    smc     #0
    mov     x1, x0
    mov     x0, #HC_REPORT
    hvc     #0                          /* reports CPU_ON's answer */
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0008                 /* SYSTEM_OFF: must come back */
    smc     #0
    mov     x1, x0
    mov     x0, #HC_REPORT
    hvc     #0                          /* reports SYSTEM_OFF's answer */

    ldr     x3, [x11, #8]               /* extra reports the hypervisor asked for (0: none) */
    cbz     x3, 2f
1:  mov     x0, #HC_REPORT
    mov     x1, x3
    hvc     #0
    subs    x3, x3, #1
    b.ne    1b
2:  mrs     x1, sp_el0                  /* done carries SP_EL0 as it is now */
    mov     x0, #HC_DONE
    hvc     #0
3:  b       3b

/* VBAR_EL1: 16 vectors of 0x80 bytes, 2 KiB aligned. Each one names itself. */
    .macro guest_vector offset
    .balign 0x80
    mov     x4, #\offset
    b       guest_exception
    .endm
    .org    __guest_start + 2048        /* an error if the code outgrows the first half of the page */
guest_vectors:
    .irp offset, 0x000, 0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0x400, 0x480, 0x500, 0x580, 0x600, 0x680, 0x700, 0x780
    guest_vector \offset
    .endr
guest_exception:
    mrs     x1, esr_el1
    mrs     x2, far_el1
    mrs     x3, elr_el1
    mov     x0, #HC_ABORT
    hvc     #0                          /* the hypervisor ends the run if it did not inject this */
    add     x3, x3, #4                  /* past the access that faulted */
    msr     elr_el1, x3
    eret
    .org    __guest_start + 4096        /* an error if the code and vectors outgrow the one code page */
__guest_end:

/* Enter the guest: x0 = entry IPA, x1 = SPSR_EL2. Zeroes the general registers. */
    .section .text.guest_enter, "ax"
    .global hv_guest_enter
hv_guest_enter:
    msr     elr_el2, x0
    msr     spsr_el2, x1
    mov     x0, xzr
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    mov     x4, xzr
    mov     x5, xzr
    mov     x6, xzr
    mov     x7, xzr
    mov     x8, xzr
    mov     x9, xzr
    mov     x10, xzr
    mov     x11, xzr
    mov     x12, xzr
    mov     x13, xzr
    isb
    eret

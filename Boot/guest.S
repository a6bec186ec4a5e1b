/*
 * Boot/guest.S: a tiny EL1 guest, run by the hypervisor under a P2M
 * (Sources/Hypervisor/GuestScenario.swift). It is position independent and
 * fits in one page, which the hypervisor maps read-only and executable at the
 * guest's IPA; its data pages are separate frames.
 *
 * The guest runs with its own MMU off (VA = IPA) and speaks through HVC:
 *   x0 = 1 ping            -> x0 = 0x600d
 *   x0 = 2 report, x1 = v  (the hypervisor records v)
 *   x0 = 0xff done, x1 = its SP_EL0 (set at the start, checked unchanged)
 * and, through SMC (trapped: HCR_EL2.TSC), PSCI CPU_ON and SYSTEM_OFF, whose
 * answers it reports.
 * Data layout (IPA): code at 0x8000_0000, a read-write page at +0x1000, a
 * read-only page at +0x2000, and nothing at +0x10_0000 until the hypervisor
 * populates it on the stage-2 fault. The word at +0x1008 asks for that many
 * extra report calls before done (a bounded-storage test); a non-zero word at
 * +0x1010 makes it try a semihosting exit with status 0 first.
 */
#define HC_PING     1
#define HC_REPORT   2
#define HC_DONE     0xff

    .section .text.guest, "ax"
    .balign 4096
    .global __guest_start, __guest_end
__guest_start:
    movz    x9, #0x5e0e, lsl #16
    movk    x9, #0x1000                 /* SP_EL0 = 0x5e0e1000: must survive every exit */
    msr     sp_el0, x9
    mov     x0, #HC_PING
    hvc     #0
    mov     x1, x0                      /* report the ping's answer */
    mov     x0, #HC_REPORT
    hvc     #0

    movz    x10, #0x8000, lsl #16       /* IPA 0x8000_0000 */
    add     x11, x10, #0x1000           /* the read-write page */
    add     x12, x10, #0x2000           /* the read-only page */
    add     x13, x10, #0x100000         /* not mapped yet */

    ldr     x3, [x11, #16]              /* asked to try a semihosting exit first? */
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
    .balign 4096
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

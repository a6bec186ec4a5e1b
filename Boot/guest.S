/*
 * Boot/guest.S: a tiny EL1 guest, run by the hypervisor under a P2M
 * (Sources/Hypervisor/GuestScenario.swift). It is position independent and
 * fits in one page, which the hypervisor maps read-only and executable at the
 * guest's IPA; its data pages are separate frames.
 *
 * The guest runs with its own MMU off (VA = IPA) and speaks through HVC:
 *   x0 = 1 ping            -> x0 = 0x600d
 *   x0 = 2 report, x1 = v  (the hypervisor records v)
 *   x0 = 0xff done
 * Data layout (IPA): code at 0x8000_0000, a read-write page at +0x1000, a
 * read-only page at +0x2000, and nothing at +0x10_0000 until the hypervisor
 * populates it on the stage-2 fault.
 */
#define HC_PING     1
#define HC_REPORT   2
#define HC_DONE     0xff

    .section .text.guest, "ax"
    .balign 4096
    .global __guest_start, __guest_end
__guest_start:
    mov     x0, #HC_PING
    hvc     #0
    mov     x1, x0                      /* report the ping's answer */
    mov     x0, #HC_REPORT
    hvc     #0

    movz    x10, #0x8000, lsl #16       /* IPA 0x8000_0000 */
    add     x11, x10, #0x1000           /* the read-write page */
    add     x12, x10, #0x2000           /* the read-only page */
    add     x13, x10, #0x100000         /* not mapped yet */

    movz    x2, #0xbeef
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

    mov     x0, #HC_DONE
    hvc     #0
1:  b       1b
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

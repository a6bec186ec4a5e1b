/*
 * Boot/host.S: entering the deprivileged host (an OS kernel at EL1) and the
 * entry every further CPU takes when the host starts it with PSCI CPU_ON
 * (Sources/Hypervisor/LinuxHost*.swift).
 *
 * A CPU the host starts never comes up outside the hypervisor: the
 * hypervisor forwards CPU_ON to firmware with hv_cpu_entry as the entry
 * point and the CPU's slot as the context id. The CPU then arrives here at
 * EL2 with its MMU off, takes its own stacks (SP_EL2 and, for EL2's own
 * exceptions, SP_EL0, each above a guard page), the primary's EL2 vectors and
 * translation regime, and calls hv_cpu_main(slot), which gives it the same
 * EL2 state and stage 2 before it enters the host where the host asked.
 */
#include "host.h"

    .section .text.host, "ax"

/* hv_host_enter(entry, x0 for the host, stack top): the EL2 state is set;
 * erets into the host at EL1h with every other general register zero.
 * SP_EL2 starts empty again: each exit from the host begins on a clean stack. */
    .global hv_host_enter
hv_host_enter:
    mov     sp, x2
    msr     elr_el2, x0
    mov     x0, x1
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
    mov     x14, xzr
    mov     x15, xzr
    mov     x16, xzr
    mov     x17, xzr
    mov     x18, xzr
    mov     x19, xzr
    mov     x20, xzr
    mov     x21, xzr
    mov     x22, xzr
    mov     x23, xzr
    mov     x24, xzr
    mov     x25, xzr
    mov     x26, xzr
    mov     x27, xzr
    mov     x28, xzr
    mov     x29, xzr
    mov     x30, xzr
    isb
    eret

/* PSCI CPU_ON entry point for the host's CPUs: EL2, MMU off, x0 = slot
 * (below HV_HOST_MAX_CPUS: the hypervisor chose it). hv_el2_regime holds the
 * primary's MAIR_EL2, TCR_EL2, TTBR0_EL2 and SCTLR_EL2, cleaned to the point
 * of coherency before CPU_ON, so these non-cacheable loads see them. */
    .global hv_cpu_entry
hv_cpu_entry:
    and     x19, x0, #(HV_HOST_MAX_CPUS - 1)
    msr     tpidr_el2, x19              /* the slot: Boot/vectors.S finds SP_EL0 from it */
    adrp    x1, hv_cpu_stacks
    add     x1, x1, :lo12:hv_cpu_stacks
    mov     x2, #(HV_CPU_SLOT_SIZE >> 12)
    mul     x2, x2, x19
    add     x1, x1, x2, lsl #12         /* the slot's base */
    add     x2, x1, #HV_CPU_EXCEPTION_STACK_TOP
    msr     sp_el0, x2                  /* EL2's own exceptions run there */
    add     x1, x1, #(HV_CPU_SLOT_SIZE >> 12), lsl #12
    mov     sp, x1                      /* the slot's stack */
    adrp    x1, hv_el2_vectors
    add     x1, x1, :lo12:hv_el2_vectors
    msr     vbar_el2, x1
    adrp    x1, hv_el2_regime
    add     x1, x1, :lo12:hv_el2_regime
    ldp     x2, x3, [x1]
    ldp     x4, x5, [x1, #16]
    msr     mair_el2, x2
    msr     tcr_el2, x3
    msr     ttbr0_el2, x4
    isb
    tlbi    alle2
    dsb     ish
    isb
    msr     sctlr_el2, x5
    isb
    ic      iallu
    dsb     ish
    isb
    mov     x0, x19
    bl      hv_cpu_main
    b       hv_park

    .section .data.host, "aw"
    .balign 64
    .global hv_el2_regime
hv_el2_regime:
    .quad   0, 0, 0, 0
    /* The host mode's lock (Sources/Hypervisor/SpinLock.swift), alone in its cache line. */
    .balign 64
    .global hv_host_lock
hv_host_lock:
    .quad   0
    .balign 64

#if HV_CPU_SLOT_SIZE != 2 * HV_CPU_GUARD_SIZE + HV_CPU_EXCEPTION_STACK_SIZE + HV_HOST_CPU_STACK_SIZE \
    || HV_CPU_EXCEPTION_STACK_TOP != HV_CPU_GUARD_SIZE + HV_CPU_EXCEPTION_STACK_SIZE \
    || (HV_HOST_MAX_CPUS & (HV_HOST_MAX_CPUS - 1)) != 0 || (HV_CPU_SLOT_SIZE & 0xfff) != 0
#error "host.h: the per-CPU stack slot's sizes disagree"
#endif
    /* Per-CPU slots (host.h): guard, exception stack, guard, stack. */
    .section .bss.host, "aw", %nobits
    .balign 4096
    .global hv_cpu_stacks, hv_cpu_stacks_end
hv_cpu_stacks:
    .space  HV_CPU_SLOT_SIZE * HV_HOST_MAX_CPUS
hv_cpu_stacks_end:

/*
 * host.h: the board's entry into the deprivileged host (Boot/host.S) and the
 * EL2 and EL1 registers only the host mode touches.
 */
#ifndef HV_HOST_H
#define HV_HOST_H

/* Per-CPU EL2 stacks (Boot/host.S; AArch64's EL2StackLayout states the same
 * layout, and the board checks the two agree). Each CPU slot, upwards:
 * [guard page][exception stack, SP_EL0][guard page][stack, SP_EL2]; the guard
 * pages are left out of the EL2 map (EL2Protection.swift). Slot 0 is the boot
 * CPU's exception stack in the board checks, and whichever CPU the host
 * mode numbers 0. HV_HOST_MAX_CPUS is a power of two (Boot/vectors.S masks). */
#define HV_HOST_CPU_STACK_SIZE      0x10000
#define HV_CPU_EXCEPTION_STACK_SIZE 0x4000
#define HV_CPU_GUARD_SIZE           0x1000
#define HV_CPU_SLOT_SIZE            0x16000  /* 2 guards + exception stack + stack */
#define HV_CPU_EXCEPTION_STACK_TOP  0x5000   /* guard + exception stack */
#define HV_HOST_MAX_CPUS            8

#ifndef __ASSEMBLER__
#include <stdint.h>

#define HV_HOST_INLINE static inline __attribute__((always_inline))
#define HV_HOST_SYSREG(name, spelling)                                         \
    HV_HOST_INLINE uint64_t arch_read_##name(void) {                           \
        uint64_t v; __asm__ volatile("mrs %0, " #spelling : "=r"(v)); return v; } \
    HV_HOST_INLINE void arch_write_##name(uint64_t v) {                        \
        __asm__ volatile("msr " #spelling ", %0" :: "r"(v) : "memory"); }

HV_HOST_SYSREG(cptr_el2, cptr_el2)
HV_HOST_SYSREG(cnthctl_el2, cnthctl_el2)
HV_HOST_SYSREG(cntvoff_el2, cntvoff_el2)
HV_HOST_SYSREG(vpidr_el2, vpidr_el2)
HV_HOST_SYSREG(vmpidr_el2, vmpidr_el2)
HV_HOST_SYSREG(hstr_el2, hstr_el2)
HV_HOST_SYSREG(mdcr_el2, mdcr_el2)
HV_HOST_SYSREG(tpidr_el2, tpidr_el2)
/* GICv3 system registers by encoding, so a GICv2-only assembler target accepts them. */
HV_HOST_SYSREG(icc_sre_el2, s3_4_c12_c9_5)
HV_HOST_SYSREG(ich_hcr_el2, s3_4_c12_c11_0)
HV_HOST_SYSREG(id_aa64pfr1_el1, id_aa64pfr1_el1)
HV_HOST_SYSREG(id_aa64isar1_el1, id_aa64isar1_el1)
HV_HOST_SYSREG(id_aa64isar2_el1, s3_0_c0_c6_2)
HV_HOST_SYSREG(id_aa64dfr0_el1, id_aa64dfr0_el1)
HV_HOST_SYSREG(pmcr_el0, pmcr_el0)
HV_HOST_SYSREG(mair_el2, mair_el2)
/* EL1 state an injected exception edits (Arm ARM D1.10, "Exception entry"). */
HV_HOST_SYSREG(esr_el1, esr_el1)
HV_HOST_SYSREG(far_el1, far_el1)
HV_HOST_SYSREG(elr_el1, elr_el1)
HV_HOST_SYSREG(spsr_el1, spsr_el1)
HV_HOST_SYSREG(vbar_el1, vbar_el1)

HV_HOST_INLINE void arch_write_spsr_el2(uint64_t v) { __asm__ volatile("msr spsr_el2, %0" :: "r"(v) : "memory"); }
HV_HOST_INLINE void arch_write_elr_el2(uint64_t v) { __asm__ volatile("msr elr_el2, %0" :: "r"(v) : "memory"); }
/* Compare-and-swap on a normal-memory word (LDAXR/STLXR on v8.0, CASAL with LSE). */
HV_HOST_INLINE _Bool arch_cas64(uint64_t address, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n((uint64_t *)(uintptr_t)address, &expected, desired, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
HV_HOST_INLINE uint64_t arch_atomic_add64(uint64_t address, uint64_t value) {
    return __atomic_add_fetch((uint64_t *)(uintptr_t)address, value, __ATOMIC_RELAXED);
}
HV_HOST_INLINE void arch_store_release64(uint64_t address, uint64_t value) {
    __atomic_store_n((uint64_t *)(uintptr_t)address, value, __ATOMIC_RELEASE);
}
HV_HOST_INLINE void arch_sev(void) { __asm__ volatile("sev" ::: "memory"); }

void hv_host_enter(uint64_t entry, uint64_t x0, uint64_t stack_top) __attribute__((noreturn));
void hv_cpu_entry(void);
HV_HOST_INLINE uint64_t arch_host_cpu_entry(void) { return (uint64_t)(uintptr_t)&hv_cpu_entry; }
HV_HOST_INLINE uint64_t *arch_el2_regime(void) { extern uint64_t hv_el2_regime[4]; return hv_el2_regime; }
HV_HOST_INLINE uint64_t *arch_host_lock(void) { extern uint64_t hv_host_lock; return &hv_host_lock; }
HV_HOST_INLINE uint64_t arch_cpu_stacks(void) { extern char hv_cpu_stacks[]; return (uint64_t)(uintptr_t)hv_cpu_stacks; }
HV_HOST_INLINE uint64_t arch_cpu_stacks_end(void) { extern char hv_cpu_stacks_end[]; return (uint64_t)(uintptr_t)hv_cpu_stacks_end; }
HV_HOST_INLINE uint64_t arch_read_sp_el0(void) { uint64_t v; __asm__ volatile("mrs %0, sp_el0" : "=r"(v)); return v; }
#endif /* __ASSEMBLER__ */
#endif

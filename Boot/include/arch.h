/*
 * ArchC: the only place the board's Swift code meets AArch64 instructions.
 *
 * Every helper is `static inline` with an asm body, so the Clang importer
 * inlines it straight into the Swift caller (EMBEDDED.md section 1). Out-of-line
 * pieces live in Boot/start.S and Boot/vectors.S. Nothing here is used by the
 * host build: only the board-only Hypervisor module imports ArchC.
 */
#ifndef HV_ARCH_H
#define HV_ARCH_H

#include <stdint.h>
#include "el2_layout.h"

#define HV_INLINE static inline __attribute__((always_inline))

/* ---- system registers ------------------------------------------------ */
#define HV_SYSREG_READ(name)                                               \
    HV_INLINE uint64_t arch_read_##name(void) {                            \
        uint64_t v; __asm__ volatile("mrs %0, " #name : "=r"(v)); return v; }
#define HV_SYSREG_WRITE(name)                                              \
    HV_INLINE void arch_write_##name(uint64_t v) {                         \
        __asm__ volatile("msr " #name ", %0" :: "r"(v) : "memory"); }

HV_SYSREG_READ(currentel)
HV_SYSREG_READ(mpidr_el1)
HV_SYSREG_READ(midr_el1)
HV_SYSREG_READ(id_aa64mmfr0_el1)
HV_SYSREG_READ(id_aa64mmfr1_el1)
HV_SYSREG_READ(id_aa64isar0_el1)
HV_SYSREG_READ(sctlr_el2)
HV_SYSREG_READ(tcr_el2)
HV_SYSREG_READ(ttbr0_el2)
HV_SYSREG_READ(hcr_el2)
HV_SYSREG_WRITE(hcr_el2)
HV_SYSREG_READ(vtcr_el2)
HV_SYSREG_WRITE(vtcr_el2)
HV_SYSREG_READ(vttbr_el2)
HV_SYSREG_WRITE(vttbr_el2)
HV_SYSREG_READ(esr_el2)
HV_SYSREG_READ(far_el2)
HV_SYSREG_READ(elr_el2)
HV_SYSREG_READ(hpfar_el2)
HV_SYSREG_READ(spsr_el2)
HV_SYSREG_READ(vbar_el2)
HV_SYSREG_READ(id_aa64pfr0_el1)
HV_SYSREG_READ(cntfrq_el0)
HV_SYSREG_READ(cntpct_el0)

/* ---- barriers -------------------------------------------------------- */
HV_INLINE void arch_dsb_ish(void)   { __asm__ volatile("dsb ish"   ::: "memory"); }
HV_INLINE void arch_dsb_ishst(void) { __asm__ volatile("dsb ishst" ::: "memory"); }
HV_INLINE void arch_dsb_sy(void)    { __asm__ volatile("dsb sy"    ::: "memory"); }
HV_INLINE void arch_dsb_st(void)    { __asm__ volatile("dsb st"    ::: "memory"); }
HV_INLINE void arch_dmb_ishst(void) { __asm__ volatile("dmb ishst" ::: "memory"); }
HV_INLINE void arch_isb(void)       { __asm__ volatile("isb"       ::: "memory"); }

/* ---- TLB maintenance (Arm ARM D8.13) --------------------------------- */
/* Stage-2 by IPA, inner shareable; operand is IPA[55:12] in bits [43:0]. */
HV_INLINE void arch_tlbi_ipas2e1is(uint64_t ipa) {
    __asm__ volatile("tlbi ipas2e1is, %0" :: "r"(ipa >> 12) : "memory");
}
/* The same with a ready operand (AArch64.TLBIOperand.page). */
HV_INLINE void arch_tlbi_ipas2e1is_operand(uint64_t operand) {
    __asm__ volatile("tlbi ipas2e1is, %0" :: "r"(operand) : "memory");
}
/* Range form (FEAT_TLBIRANGE); operand built by AArch64.TLBIRange. */
HV_INLINE void arch_tlbi_ripas2e1is(uint64_t operand) {
    __asm__ volatile(".arch_extension tlb-rmi\n tlbi ripas2e1is, %0" :: "r"(operand) : "memory");
}
/* Everything tagged with the current VTTBR_EL2.VMID, stage 1 and 2. */
HV_INLINE void arch_tlbi_vmalls12e1is(void) { __asm__ volatile("tlbi vmalls12e1is" ::: "memory"); }
HV_INLINE void arch_tlbi_vmalle1is(void)    { __asm__ volatile("tlbi vmalle1is"    ::: "memory"); }
HV_INLINE void arch_tlbi_alle2is(void)      { __asm__ volatile("tlbi alle2is"      ::: "memory"); }
HV_INLINE void arch_tlbi_alle1(void)        { __asm__ volatile("tlbi alle1"        ::: "memory"); }
HV_INLINE void arch_dsb_nsh(void)           { __asm__ volatile("dsb nsh"           ::: "memory"); }

/* ---- data cache maintenance to the point of coherency ---------------- */
HV_INLINE void arch_dc_cvac(uint64_t va)  { __asm__ volatile("dc cvac, %0"  :: "r"(va) : "memory"); }
HV_INLINE void arch_dc_civac(uint64_t va) { __asm__ volatile("dc civac, %0" :: "r"(va) : "memory"); }
/* DC ZVA (Arm ARM, "DC ZVA, Data Cache Zero by VA"): zero the naturally aligned block holding va, of the
 * size DCZID_EL0 gives (AArch64.DataCacheZeroID decodes it). Normal memory only. */
HV_INLINE void arch_dc_zva(uint64_t va) { __asm__ volatile("dc zva, %0" :: "r"(va) : "memory"); }
HV_SYSREG_READ(dczid_el0)
/* Boot/vectors.S: 16 bytes per STP from the first 8-byte aligned address. */
void *memset(void *dst, int c, unsigned long n);
/* Smallest D-cache line in bytes (CTR_EL0.DminLine is log2 of words). */
HV_INLINE uint64_t arch_dcache_line_bytes(void) {
    uint64_t ctr; __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
    return 4ull << ((ctr >> 16) & 0xf);
}

/* ---- MMIO: volatile accesses the compiler cannot merge or drop -------- */
HV_INLINE uint32_t arch_mmio_read32(uint64_t pa) { return *(volatile uint32_t *)(uintptr_t)pa; }
HV_INLINE void arch_mmio_write32(uint64_t pa, uint32_t v) { *(volatile uint32_t *)(uintptr_t)pa = v; }
HV_INLINE uint64_t arch_mmio_read64(uint64_t pa) { return *(volatile uint64_t *)(uintptr_t)pa; }
HV_INLINE void arch_mmio_write64(uint64_t pa, uint64_t v) { *(volatile uint64_t *)(uintptr_t)pa = v; }
HV_INLINE uint16_t arch_mmio_read16(uint64_t pa) { return *(volatile uint16_t *)(uintptr_t)pa; }
HV_INLINE void arch_mmio_write16(uint64_t pa, uint16_t v) { *(volatile uint16_t *)(uintptr_t)pa = v; }
HV_INLINE uint8_t arch_mmio_read8(uint64_t pa) { return *(volatile uint8_t *)(uintptr_t)pa; }
HV_INLINE void arch_mmio_write8(uint64_t pa, uint8_t v) { *(volatile uint8_t *)(uintptr_t)pa = v; }

/* ---- RAM through the identity map ------------------------------------ */
HV_INLINE uint64_t arch_load64(uint64_t pa) { return *(volatile uint64_t *)(uintptr_t)pa; }
HV_INLINE void arch_store64(uint64_t pa, uint64_t v) { *(volatile uint64_t *)(uintptr_t)pa = v; }

/* ---- firmware calls -------------------------------------------------- */
/* SMC Calling Convention: function id in x0, up to three arguments, result in x0. */
HV_INLINE uint64_t arch_smc_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t x0 __asm__("x0") = fn;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    __asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) :: "memory");
    return x0;
}
HV_INLINE uint64_t arch_hvc_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t x0 __asm__("x0") = fn;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) :: "memory");
    return x0;
}
/* Arm semihosting (A64: HLT #0xF000): op in w0, parameter block in x1. */
HV_INLINE uint64_t arch_semihosting(uint64_t op, uint64_t param) {
    register uint64_t x0 __asm__("x0") = op;
    register uint64_t x1 __asm__("x1") = param;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return x0;
}

/* Address translation through stage 1 and 2 of the EL1&0 regime, as the
 * hardware walker (and its TLBs) see it; returns PAR_EL1 (Arm ARM D23.2.119). */
HV_INLINE uint64_t arch_at_s12e1r(uint64_t va) {
    uint64_t par;
    __asm__ volatile("at s12e1r, %1\n isb\n mrs %0, par_el1" : "=r"(par) : "r"(va) : "memory");
    return par;
}
HV_INLINE uint64_t arch_at_s12e1w(uint64_t va) {
    uint64_t par;
    __asm__ volatile("at s12e1w, %1\n isb\n mrs %0, par_el1" : "=r"(par) : "r"(va) : "memory");
    return par;
}
HV_SYSREG_READ(sctlr_el1)
HV_SYSREG_WRITE(sctlr_el1)

HV_INLINE void arch_wfe(void) { __asm__ volatile("wfe"); }
HV_INLINE void arch_wfi(void) { __asm__ volatile("wfi"); }

/* ---- linker symbols (Linker/hv.ld) ------------------------------------ */
HV_INLINE uint64_t arch_image_start(void) { extern char __image_start[]; return (uint64_t)(uintptr_t)__image_start; }
HV_INLINE uint64_t arch_image_end(void)   { extern char __image_end[];   return (uint64_t)(uintptr_t)__image_end; }
/* W^X bounds (Linker/hv.ld): [image_start, text_end) code, [text_end, data_start) read-only data. */
HV_INLINE uint64_t arch_text_end(void)    { extern char __text_end[];    return (uint64_t)(uintptr_t)__text_end; }
HV_INLINE uint64_t arch_data_start(void)  { extern char __data_start[];  return (uint64_t)(uintptr_t)__data_start; }
HV_INLINE uint64_t arch_el2_wx_tables(void) { extern char __el2_wx_tables[]; return (uint64_t)(uintptr_t)__el2_wx_tables; }
void hv_el2_swap_live_entry(uint64_t *entry, uint64_t value, uint64_t sctlr_set);
/* The main stack's guard page (the per-CPU stacks' are in host.h). */
HV_INLINE uint64_t arch_stack_guard(void) { extern char __stack_guard[]; return (uint64_t)(uintptr_t)__stack_guard; }
HV_INLINE void arch_write_sp_el0(uint64_t v) { __asm__ volatile("msr sp_el0, %0" :: "r"(v) : "memory"); }
HV_INLINE uint64_t arch_heap_start(void)  { extern char __heap_start[];  return (uint64_t)(uintptr_t)__heap_start; }
HV_INLINE uint64_t arch_heap_end(void)    { extern char __heap_end[];    return (uint64_t)(uintptr_t)__heap_end; }
/* The EL2 level-1 tables start.S built (2 x 512 x 1 GiB entries, identity, 0..1 TiB). */
HV_INLINE uint64_t arch_el2_l0_table(void) { extern char __el2_l0[]; return (uint64_t)(uintptr_t)__el2_l0; }
HV_INLINE uint64_t arch_el2_l1_table(void) { extern char __el2_l1[]; return (uint64_t)(uintptr_t)__el2_l1; }
/* Spare table pages for EL2Map.swift: level-1 tables for RAM or devices above
 * 1 TiB, level-2 tables for 1 GiB blocks that RAM covers only in part. */
HV_INLINE uint64_t arch_el2_l2_pool(void) { extern char __el2_l2_pool[]; return (uint64_t)(uintptr_t)__el2_l2_pool; }
HV_INLINE uint64_t arch_el2_l2_pool_end(void) { extern char __el2_l2_pool_end[]; return (uint64_t)(uintptr_t)__el2_l2_pool_end; }
HV_INLINE void arch_tlbi_alle2is_sync(void) { __asm__ volatile("dsb ishst\n tlbi alle2is\n dsb ish\n isb" ::: "memory"); }
/* The guest (Boot/guest.S): its code page, and the entry that erets into it. */
HV_INLINE uint64_t arch_guest_start(void) { extern char __guest_start[]; return (uint64_t)(uintptr_t)__guest_start; }
HV_INLINE uint64_t arch_guest_end(void) { extern char __guest_end[]; return (uint64_t)(uintptr_t)__guest_end; }
void hv_guest_enter(uint64_t entry_ipa, uint64_t spsr) __attribute__((noreturn));
/* A 32-bit device read that survives a synchronous external abort (Boot/vectors.S). */
uint64_t hv_probe_read32(uint64_t pa, uint32_t *value);
HV_INLINE uint64_t arch_probe_read32_load(void) { extern char hv_probe_read32_load[]; return (uint64_t)(uintptr_t)hv_probe_read32_load; }
/* A semihosting call that survives semihosting being absent (Boot/vectors.S). */
uint64_t hv_try_semihosting(uint64_t op, uint64_t param);
HV_INLINE uint64_t arch_try_semihosting_hlt(void) { extern char hv_try_semihosting_hlt[]; return (uint64_t)(uintptr_t)hv_try_semihosting_hlt; }
/* The image's address -> name table (AArch64's SymbolTable; Makefile's second link). */
HV_INLINE uint64_t arch_symbols(void) { extern char hv_symbols[]; return (uint64_t)(uintptr_t)hv_symbols; }
HV_INLINE uint64_t arch_symbols_end(void) { extern char hv_symbols_end[]; return (uint64_t)(uintptr_t)hv_symbols_end; }
/* Bytes the allocator handed out so far (Boot/runtime.c). */
uint64_t hv_heap_used(void);

#endif

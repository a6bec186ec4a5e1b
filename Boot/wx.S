/*
 * Boot/wx.S: replacing a live entry of the EL2 map that the code doing the
 * replacement runs from (EL2Protection.swift: the image's 1 GiB block becomes
 * a table, for W^X).
 *
 * Break-before-make (Arm ARM D8.16.1) would leave the block invalid while
 * this very code is fetched through it, so the change is made with the EL2
 * MMU off instead: with SCTLR_EL2.M clear no translation is used, the entry
 * is written, every EL2 TLB entry is invalidated, and the MMU comes back on
 * with the new tables (and the extra SCTLR_EL2 bits asked for, e.g. WXN,
 * which TLB entries may cache: hence the invalidation before it is set).
 *
 *   void hv_el2_swap_live_entry(uint64_t *entry, uint64_t value, uint64_t sctlr_set)
 *
 * Uses no stack and touches no memory but the entry while the MMU is off.
 * The entry's cache line is cleaned and invalidated first: the store with
 * the MMU off is non-cacheable, and a dirty line written back later would
 * undo it.
 */
    .section .text.el2_swap, "ax"
    .global hv_el2_swap_live_entry
hv_el2_swap_live_entry:
    dc      civac, x0
    dsb     sy
    mrs     x3, sctlr_el2
    bic     x4, x3, #1                  /* M = 0 */
    msr     sctlr_el2, x4
    isb
    str     x1, [x0]
    dsb     sy
    tlbi    alle2
    dsb     ish
    orr     x3, x3, x2
    msr     sctlr_el2, x3
    isb
    ic      iallu
    dsb     ish
    isb
    ret

    /* One level-2 table for the image's 1 GiB block and two level-3 tables
     * for the 2 MiB blocks the image spans (cleared with the BSS). */
    .section .bss.pgtables, "aw", %nobits
    .balign 4096
    .global __el2_wx_tables
__el2_wx_tables:
    .space  3 * 4096


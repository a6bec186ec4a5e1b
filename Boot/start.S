/*
 * Boot/start.S: the first instructions of the hypervisor image.
 *
 * The image is a raw binary that begins with an arm64 Linux Image header
 * (Documentation/arch/arm64/booting.rst), so QEMU's -kernel and U-Boot's
 * booti load it alike and enter it with x0 = physical address of the DTB.
 *
 * The image is linked at 0 as a position-independent executable and may be
 * loaded at any 2 MiB-aligned address (header flags bit 3): the first thing
 * it does is apply its own R_AARCH64_RELATIVE relocations for the address
 * it finds itself at. Every other address comes from the DTB.
 *
 * Order of events:
 *   0. relocate for the load address (MMU and D-cache off, as the boot
 *      protocol requires, so the stores reach RAM directly)
 *   1. remember the DTB, read CurrentEL
 *   2. stack, BSS
 *   3. anywhere but EL2: turn on a minimal EL1 map and let Swift print the
 *      refusal (the UART's address comes from the DTB, so Swift parses it)
 *   4. EL2: VBAR_EL2, a coarse identity map with caches on, then hv_main(dtb)
 *
 * The coarse map (built here, before any Swift code runs) covers 0..1 TiB
 * with 1 GiB blocks: Device-nGnRE everywhere (this includes the high PCIe
 * ECAM window at 0x40_1000_0000 on QEMU virt), Normal write-back for the
 * 1 GiB blocks holding the image (where it was loaded) and the DTB (both
 * are in RAM by the boot protocol). Swift then refines it from the DTB's memory banks
 * (Sources/Hypervisor/EL2Map.swift) before touching any other RAM.
 */

#include "el2_layout.h"
#define MAIR_VALUE      HV_MAIR_VALUE
#define BLOCK_DEVICE    HV_BLOCK_DEVICE
#define BLOCK_NORMAL    HV_BLOCK_NORMAL
#define TABLE_DESC      0x3
#define TCR_COMMON      0x3510              /* T0SZ=16 (48-bit VA) | IRGN0=WBWA | ORGN0=WBWA | SH0=inner */
#define TCR_EL2_RES1    0x80800000          /* bits 31 and 23 */
#define TCR_EL1_EPD1    (1 << 23)           /* no TTBR1 walks at EL1 */
#define SCTLR_EL2_VAL   0x30c5183d          /* RES1 | M | C | SA | I */
#define SCTLR_EL1_VAL   (HV_SCTLR_EL1_RES1 | HV_SCTLR_EL1_MMU_ON)
#define R_AARCH64_RELATIVE  1027            /* ELF for the Arm 64-bit Architecture, table 5-19 */
#define IMAGE_FLAGS     0xa                 /* little-endian, 4 KiB pages (bits 2:1 = 1), placement anywhere (bit 3) */

    .section .text.boot, "ax"
    .global _start
_start:
    b       primary_entry               /* code0 */
    .long   0                           /* code1 */
    .quad   0                           /* text_offset: the image starts on the 2 MiB boundary */
    .quad   __image_size                /* image_size, BSS and stacks included */
    .quad   IMAGE_FLAGS
    .quad   0                           /* res2 */
    .quad   0                           /* res3 */
    .quad   0                           /* res4 */
    .ascii  "ARM\x64"                   /* magic */
    .long   0                           /* res5 (no PE/COFF header) */

primary_entry:
    mov     x19, x0                     /* DTB */
    bl      relocate
    mrs     x20, CurrentEL
    ubfx    x20, x20, #2, #2

    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1

    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    bl      build_identity_map          /* x0 = root table */
    cmp     x20, #2
    b.ne    wrong_el

    adrp    x1, hv_el2_vectors
    add     x1, x1, :lo12:hv_el2_vectors
    msr     vbar_el2, x1
    isb

    ldr     x1, =MAIR_VALUE
    msr     mair_el2, x1
    bl      tcr_ps_bits                 /* x1 = PARange clamped to 48 bits */
    ldr     x2, =(TCR_COMMON | TCR_EL2_RES1)
    orr     x2, x2, x1, lsl #16         /* TCR_EL2.PS [18:16] */
    msr     tcr_el2, x2
    msr     ttbr0_el2, x0
    isb
    tlbi    alle2
    /* EL1&0 entries of every VMID, left by firmware or an earlier image: gone
     * before the first VMID is used (self-test walks, the first guest). */
    tlbi    alle1
    dsb     ish
    isb
    ldr     x1, =SCTLR_EL2_VAL
    msr     sctlr_el2, x1
    isb
    ic      iallu
    dsb     ish
    isb

    msr     tpidr_el2, xzr              /* CPU slot 0 (Boot/include/host.h) */
    mov     x0, x19
    bl      hv_main                     /* does not return */
    b       hv_park

wrong_el:
    /* Same tables, EL1 registers: Swift needs Normal memory for its loads. */
    ldr     x1, =MAIR_VALUE
    msr     mair_el1, x1
    bl      tcr_ps_bits
    ldr     x2, =(TCR_COMMON | TCR_EL1_EPD1)
    orr     x2, x2, x1, lsl #32         /* TCR_EL1.IPS [34:32] */
    msr     tcr_el1, x2
    msr     ttbr0_el1, x0
    isb
    tlbi    vmalle1
    dsb     ish
    isb
    ldr     x1, =SCTLR_EL1_VAL
    msr     sctlr_el1, x1
    isb
    ic      iallu
    dsb     ish
    isb
    mov     x0, x19
    mov     x1, x20
    bl      hv_wrong_el                 /* prints the refusal and powers off */
    .global hv_park
hv_park:
    wfe
    b       hv_park

/*
 * Applies .rela.dyn for the address the image runs at (linked at 0, so that
 * address is the delta). Leaf routine: no stack, no memory but the image.
 * Only R_AARCH64_RELATIVE is expected (the build checks it); anything else,
 * or a load address that is not 4 KiB-aligned (ADRP would then be wrong
 * everywhere), parks: there is no console yet to say so.
 */
relocate:
    adr     x9, _start                  /* load address = delta */
    tst     x9, #0xfff
    b.ne    hv_park
    adrp    x10, __rela_start
    add     x10, x10, :lo12:__rela_start
    adrp    x11, __rela_end
    add     x11, x11, :lo12:__rela_end
1:  cmp     x10, x11
    b.hs    2f
    ldp     x12, x13, [x10], #16        /* r_offset, r_info */
    ldr     x14, [x10], #8              /* r_addend */
    cmp     x13, #R_AARCH64_RELATIVE
    b.ne    hv_park
    add     x14, x14, x9
    str     x14, [x12, x9]
    b       1b
2:  ret

/* x1 = ID_AA64MMFR0_EL1.PARange, at most 5 (48 bits: the VA size we use). */
tcr_ps_bits:
    mrs     x1, id_aa64mmfr0_el1
    and     x1, x1, #0xf
    cmp     x1, #5
    mov     x3, #5
    csel    x1, x3, x1, hi
    ret

/*
 * Coarse identity map, 0..1 TiB. Leaf routine: no stack. Returns x0 = L0.
 * Uses x0-x7. x19 = DTB.
 */
build_identity_map:
    adrp    x0, __el2_l0
    add     x0, x0, :lo12:__el2_l0
    adrp    x1, __el2_l1
    add     x1, x1, :lo12:__el2_l1
    orr     x2, x1, #TABLE_DESC
    str     x2, [x0]                    /* L0[0] -> L1 (0..512 GiB) */
    add     x2, x2, #4096
    str     x2, [x0, #8]                /* L0[1] -> L1' (512 GiB..1 TiB) */
    ldr     x3, =BLOCK_DEVICE
    mov     x4, #0                      /* index */
3:  lsl     x5, x4, #30
    orr     x5, x5, x3
    str     x5, [x1, x4, lsl #3]
    add     x4, x4, #1
    cmp     x4, #1024
    b.lo    3b
    ldr     x3, =BLOCK_NORMAL
    adrp    x4, _start
    lsr     x4, x4, #30                 /* GiB holding the image's start */
    lsl     x5, x4, #30
    orr     x5, x5, x3
    str     x5, [x1, x4, lsl #3]
    adrp    x4, __image_end
    sub     x4, x4, #1
    lsr     x4, x4, #30                 /* and its end, if it straddles a GiB boundary */
    lsl     x5, x4, #30
    orr     x5, x5, x3
    str     x5, [x1, x4, lsl #3]
    cbz     x19, 4f
    lsr     x4, x19, #30                /* GiB holding the DTB */
    cmp     x4, #1024
    b.hs    4f
    lsl     x5, x4, #30
    orr     x5, x5, x3
    str     x5, [x1, x4, lsl #3]
4:
    /* The tables and the image were written with the MMU off: drop any
     * stale cache lines so the walker and the first cacheable loads see RAM. */
    adrp    x4, __image_start
    add     x4, x4, :lo12:__image_start
    adrp    x5, __image_end
    add     x5, x5, :lo12:__image_end
    mrs     x6, ctr_el0
    ubfx    x6, x6, #16, #4
    mov     x7, #4
    lsl     x6, x7, x6                  /* D-cache line bytes */
    sub     x7, x6, #1
    bic     x4, x4, x7
5:  dc      ivac, x4
    add     x4, x4, x6
    cmp     x4, x5
    b.lo    5b
    dsb     sy
    ret

    /* Page tables for the EL2 identity map, in BSS (cleared above). */
    .section .bss.pgtables, "aw", %nobits
    .balign 4096
    .global __el2_l0, __el2_l1, __el2_l2_pool, __el2_l2_pool_end
__el2_l0:
    .space  4096
__el2_l1:
    .space  8192
    /* Spare tables for EL2Map.swift: level 1 above 1 TiB, level 2 where
     * RAM covers a 1 GiB block only in part. */
__el2_l2_pool:
    .space  12 * 4096
__el2_l2_pool_end:

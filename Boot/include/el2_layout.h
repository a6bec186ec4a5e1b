/*
 * el2_layout.h: values shared by Boot/start.S (assembler) and the board's
 * Swift code (through ArchC), so each is written once. Plain #defines only:
 * this header is included from assembly.
 */
#ifndef HV_EL2_LAYOUT_H
#define HV_EL2_LAYOUT_H

/* MAIR_EL2/MAIR_EL1: idx0 Device-nGnRnE, idx1 Device-nGnRE, idx2 Normal WB RA/WA, idx3 Normal NC. */
#define HV_MAIR_VALUE        0x0000000044ff0400
/* 1 GiB / 2 MiB block descriptors of the EL2 identity map (stage 1, 4 KiB granule). */
#define HV_BLOCK_DEVICE      0x0040000000000405  /* block | AttrIndx=1 | AF | XN */
#define HV_BLOCK_NORMAL      0x0000000000000709  /* block | AttrIndx=2 | SH=inner | AF */
/* SCTLR_EL1 RES1 bits (11, 20, 22, 23, 28, 29) with M, C, SA, I clear: EL1 stage 1 off. */
#define HV_SCTLR_EL1_RES1    0x30d00800
/* SCTLR_EL1.M | C | SA | I. */
#define HV_SCTLR_EL1_MMU_ON  0x0000100d

#endif

import AArch64

/// SMMUv3 programming-interface register offsets and fields
/// (Arm IHI 0070, chapter 6; cross-checked with Linux `arm-smmu-v3.h`).
///
/// Every offset and bit position used by the driver is named here once.
/// 32-bit registers must be accessed with 32-bit accesses (HARDWARE.md trap 2);
/// only the `*_BASE` and `*_IRQ_CFG0` registers are 64-bit.
public enum SMMURegister {
    public static let idr0 = 0x000
    public static let idr1 = 0x004
    public static let idr2 = 0x008
    public static let idr3 = 0x00C
    public static let idr4 = 0x010
    public static let idr5 = 0x014
    public static let cr0 = 0x020
    public static let cr0ack = 0x024
    public static let cr1 = 0x028
    public static let cr2 = 0x02C
    public static let gbpa = 0x044
    public static let irqCtrl = 0x050
    public static let irqCtrlAck = 0x054
    public static let gerror = 0x060
    public static let gerrorn = 0x064
    public static let strtabBase = 0x080
    public static let strtabBaseCfg = 0x088
    public static let cmdqBase = 0x090
    public static let cmdqProd = 0x098
    public static let cmdqCons = 0x09C
    public static let evtqBase = 0x0A0
    /// Page 1 (IHI 0070 6.2: the EVTQ/PRIQ index registers live in the second
    /// 64 KiB page). QEMU aliases page 1 onto page 0; real SMMUs do not.
    public static let page1 = 0x10000
    public static let evtqProd = page1 + 0x0A8
    public static let evtqCons = page1 + 0x0AC
}

/// SMMU_CR0 / SMMU_CR0ACK (IHI 0070 6.3.9).
public enum CR0 {
    public static let smmuEnable: UInt32 = 1 << 0
    public static let eventQueueEnable: UInt32 = 1 << 2
    public static let commandQueueEnable: UInt32 = 1 << 3
}

/// SMMU_CR1 (IHI 0070 6.3.11): attributes of the SMMU's own table and queue
/// accesses. Cacheability here is 0 = NC, 1 = WB, 2 = WT (not the TCR encoding,
/// HARDWARE.md trap 11).
public enum CR1 {
    public static let queueInnerShift: UInt32 = 0
    public static let queueOuterShift: UInt32 = 2
    public static let queueShareShift: UInt32 = 4
    public static let tableInnerShift: UInt32 = 6
    public static let tableOuterShift: UInt32 = 8
    public static let tableShareShift: UInt32 = 10
    public static let cacheNonCacheable: UInt32 = 0
    public static let cacheWriteBack: UInt32 = 1
    public static let shareNone: UInt32 = 0
    public static let shareInner: UInt32 = 3

    /// Inner/outer write-back, inner shareable for a coherent SMMU; non-cacheable
    /// (and so effectively outer shareable) when the SMMU does not snoop.
    @_transparent public static func value(coherent: Bool) -> UInt32 {
        let cache = coherent ? cacheWriteBack : cacheNonCacheable
        let share = coherent ? shareInner : shareNone
        return cache << queueInnerShift | cache << queueOuterShift | share << queueShareShift
            | cache << tableInnerShift | cache << tableOuterShift | share << tableShareShift
    }
}

/// SMMU_CR2 (IHI 0070 6.3.12).
public enum CR2 {
    /// Record C_BAD_STREAMID for out-of-range StreamIDs.
    public static let recordInvalidStreamID: UInt32 = 1 << 1
    /// Private TLB maintenance: ignore broadcast TLBI from the PEs; every SMMU
    /// invalidation is an explicit command.
    public static let privateTLBMaintenance: UInt32 = 1 << 2
}

/// SMMU_GBPA (IHI 0070 6.3.14).
public enum GBPA {
    public static let update: UInt32 = 1 << 31
    public static let abort: UInt32 = 1 << 20
}

/// SMMU_GERROR / SMMU_GERRORN (IHI 0070 6.3.19, 6.3.20, 7.5): an error is
/// active while the bit differs between the two registers; software
/// acknowledges it by toggling that bit in GERRORN, and must not toggle a bit
/// whose error is inactive.
public enum GERROR {
    /// CMDQ_ERR: the command queue stopped at CMDQ_CONS (CONS.ERR says why).
    public static let commandQueueError: UInt32 = 1 << 0
    /// EVENTQ_ABT_ERR: an access to the event queue aborted; records may have
    /// been lost and none are written while it is active (7.2.1, 7.2.2).
    public static let eventQueueAbortError: UInt32 = 1 << 2
    /// PRIQ_ABT_ERR: an access to the PRI queue aborted.
    public static let priQueueAbortError: UInt32 = 1 << 3
    /// MSI_CMDQ_ABT_ERR, MSI_EVENTQ_ABT_ERR, MSI_PRIQ_ABT_ERR, MSI_GERROR_ABT_ERR
    /// (bits 4..7): that MSI write aborted; later MSIs are not affected.
    public static let msiCommandQueueAbortError: UInt32 = 1 << 4
    public static let msiEventQueueAbortError: UInt32 = 1 << 5
    public static let msiPRIQueueAbortError: UInt32 = 1 << 6
    public static let msiGlobalErrorAbortError: UInt32 = 1 << 7
    public static let msiAbortErrors: UInt32 = 0xF0
    /// SFM_ERR: the SMMU entered service failure mode; traffic, commands and
    /// events have stopped, and acknowledging does not leave the mode.
    public static let serviceFailureMode: UInt32 = 1 << 8
    /// Every architected bit up to SMMUv3.1 (bit 1 is reserved; CMDQP_ERR and
    /// DPT_ERR, bits 9 and 10, exist only with ECMDQ and DPT, which this driver
    /// neither probes nor enables).
    public static let mask: UInt32 = 0x1FD
}

/// STRTAB_BASE / STRTAB_BASE_CFG (IHI 0070 6.3.24, 6.3.25).
public enum StreamTableBase {
    public static let readAllocate: UInt64 = 1 << 62
    public static let addressMask: UInt64 = 0x000F_FFFF_FFFF_FFC0
    public static let log2SizeShift: UInt32 = 0
    public static let splitShift: UInt32 = 6
    public static let formatShift: UInt32 = 16
    public static let formatLinear: UInt32 = 0
    public static let formatTwoLevel: UInt32 = 1
}

/// CMDQ_BASE / EVENTQ_BASE (IHI 0070 6.3.26, 6.3.29).
public enum QueueBase {
    /// RA for the command queue, WA for the event queue: both bit 62.
    public static let allocateHint: UInt64 = 1 << 62
    public static let addressMask: UInt64 = 0x000F_FFFF_FFFF_FFE0
    public static let log2SizeMask: UInt64 = 0x1F

    public static func value(base: PhysAddr, log2Entries: UInt32) -> UInt64 {
        allocateHint | base.raw & addressMask | UInt64(log2Entries) & log2SizeMask
    }
}

/// CMDQ_CONS.ERR (IHI 0070 6.3.28) and the CERROR codes (IHI 0070 7.1).
public enum CommandConsumerError: UInt8, Equatable, Sendable {
    case none = 0
    case illegal = 1
    case abort = 2
    case atcInvalidationSync = 3

    public static let shift: UInt32 = 24
    public static let mask: UInt32 = 0x7F

    public static func field(of cons: UInt32) -> UInt8 { UInt8((cons >> shift) & mask) }
}

import AArch64

/// What an SMMU can do, decoded from SMMU_IDR0..IDR5 (IHI 0070 6.3.1-6.3.6).
///
/// Only the fields the driver acts on are decoded; the raw registers are kept
/// so the board can print them.
public struct SMMUFeatures: Equatable, Sendable {
    public var idr0: UInt32
    public var idr1: UInt32
    public var idr3: UInt32
    public var idr5: UInt32

    public init(idr0: UInt32, idr1: UInt32, idr3: UInt32, idr5: UInt32) {
        self.idr0 = idr0
        self.idr1 = idr1
        self.idr3 = idr3
        self.idr5 = idr5
    }

    /// Read the ID registers (32-bit accesses only).
    @_transparent public init<R: RegisterBlock>(reading registers: R) {
        self.init(idr0: registers.read32(SMMURegister.idr0), idr1: registers.read32(SMMURegister.idr1),
                  idr3: registers.read32(SMMURegister.idr3), idr5: registers.read32(SMMURegister.idr5))
    }

    @inline(__always) static func field(_ value: UInt32, _ shift: UInt32, _ width: UInt32) -> UInt32 {
        (value >> shift) & ((1 << width) - 1)
    }

    // IDR0
    public var stage2: Bool { Self.field(idr0, 0, 1) == 1 }
    public var stage1: Bool { Self.field(idr0, 1, 1) == 1 }
    /// TTF: 1 = AArch32 only, 2 = AArch64 only, 3 = both.
    public var tableFormats: UInt32 { Self.field(idr0, 2, 2) }
    public var aarch64Tables: Bool { tableFormats & 0b10 != 0 }
    public var coherentAccess: Bool { Self.field(idr0, 4, 1) == 1 }
    public var hyp: Bool { Self.field(idr0, 9, 1) == 1 }
    public var asid16: Bool { Self.field(idr0, 12, 1) == 1 }
    public var msi: Bool { Self.field(idr0, 13, 1) == 1 }
    public var sev: Bool { Self.field(idr0, 14, 1) == 1 }
    public var vmid16: Bool { Self.field(idr0, 18, 1) == 1 }
    /// TTENDIAN: 0 mixed, 2 little-endian only, 3 big-endian only.
    public var tableEndianness: UInt32 { Self.field(idr0, 21, 2) }
    /// STALL_MODEL: 0 stall and terminate, 1 terminate only, 2 stall forced.
    public var stallModel: UInt32 { Self.field(idr0, 24, 2) }
    public var terminateModel: Bool { Self.field(idr0, 26, 1) == 1 }
    public var twoLevelStreamTable: Bool { Self.field(idr0, 27, 2) == 1 }

    // IDR1
    public var streamIDBits: Int { Int(Self.field(idr1, 0, 6)) }
    public var substreamIDBits: Int { Int(Self.field(idr1, 6, 5)) }
    public var eventQueueLog2Max: Int { Int(Self.field(idr1, 16, 5)) }
    public var commandQueueLog2Max: Int { Int(Self.field(idr1, 21, 5)) }
    /// ATTR_TYPES_OVR, bit 27: incoming memory type, shareability and
    /// allocation hints can be overridden (STE.MTCFG/SHCFG/ALLOCCFG, GBPA);
    /// with it clear those STE fields are RES0.
    public var attributeTypesOverride: Bool { Self.field(idr1, 27, 1) == 1 }
    /// REL: queue and table base addresses are offsets from the SMMU base.
    public var relativeBases: Bool { Self.field(idr1, 28, 1) == 1 }
    public var queuesPreset: Bool { Self.field(idr1, 29, 1) == 1 }
    public var tablesPreset: Bool { Self.field(idr1, 30, 1) == 1 }

    // IDR3
    /// STT, bit 9: small translation tables (T0SZ up to 48 with a 4 KiB granule).
    public var smallTranslationTables: Bool { Self.field(idr3, 9, 1) == 1 }
    public var rangeInvalidation: Bool { Self.field(idr3, 10, 1) == 1 }

    // IDR5
    /// OAS encoded as in TCR.IPS / VTCR.PS (0 = 32 bits ... 6 = 52 bits).
    public var outputAddressSizeCode: UInt32 { Self.field(idr5, 0, 3) }
    /// OAS as a range; a larger encoding than 52 bits (0b111) still reads as 52 (the
    /// P2M caps its output at 48 bits anyway).
    public var outputAddressRange: PhysicalAddressRange {
        PhysicalAddressRange(rawValue: UInt8(outputAddressSizeCode)) ?? .bits52
    }
    public var outputAddressBits: Int { outputAddressRange.bits }
    /// IAS, the largest IPA the SMMU takes into stage 2 (IHI 0070 3.4):
    /// MAX(IDR0.TTF[0] (AArch32 LPAE tables) ? 40 : 0, IDR0.TTF[1] (AArch64) ? OAS : 0).
    @_transparent public var intermediateAddressBits: Int {
        max(tableFormats & 0b01 != 0 ? 40 : 0, aarch64Tables ? outputAddressBits : 0)
    }
    /// The IPA sizes (64 - S2T0SZ) an AArch64 stage-2 STE with the 4 KiB granule
    /// and S2DS = 0 may hold (IHI 0070 5.2, STE.S2T0SZ): S2T0SZ at least
    /// MAX(16, 64 - IAS), at most 39, or 48 with IDR3.STT.
    @_transparent public var stage2InputBits: ClosedRange<Int> {
        (smallTranslationTables ? 64 - 48 : 64 - 39)...min(64 - 16, intermediateAddressBits)
    }
    public var granule4K: Bool { Self.field(idr5, 4, 1) == 1 }
    public var granule16K: Bool { Self.field(idr5, 5, 1) == 1 }
    public var granule64K: Bool { Self.field(idr5, 6, 1) == 1 }

    /// Read the ID registers and refuse hardware this driver cannot drive.
    public static func probe<R: RegisterBlock>(_ registers: R) throws(SMMUProbeError) -> SMMUFeatures {
        let features = SMMUFeatures(reading: registers)
        try features.validate()
        return features
    }

    /// Which translation mode this driver uses with this SMMU: stage 2 shares the
    /// P2M (as Xen does); without stage 2 a per-domain stage-1 mirror is kept.
    /// The P2M's table writes are not cleaned to PoC, so a non-coherent SMMU
    /// gets the mirror whenever it has stage 1.
    public func preferredMode(coherent: Bool) -> TranslationMode {
        stage2 && (coherent || !stage1) ? .stage2 : .stage1
    }

    /// Refuse hardware this driver cannot drive, naming the reason.
    /// Transparent: on the board its one caller is `probe`.
    @_transparent public func validate() throws(SMMUProbeError) {
        guard aarch64Tables else { throw .noAArch64TableFormat(ttf: tableFormats) }
        guard stage1 || stage2 else { throw .noTranslationStage }
        guard granule4K else { throw .no4KGranule(idr5: idr5) }
        guard tableEndianness != 3 else { throw .bigEndianTablesOnly }
        guard stallModel != 2 else { throw .stallForced }
        guard !relativeBases else { throw .relativeBaseAddresses }
        guard !queuesPreset && !tablesPreset else { throw .presetTablesOrQueues(idr1: idr1) }
        guard commandQueueLog2Max >= 1 && eventQueueLog2Max >= 1 else {
            throw .queuesTooSmall(commandLog2: commandQueueLog2Max, eventLog2: eventQueueLog2Max)
        }
    }
}

/// Which stage the driver translates DMA with.
public enum TranslationMode: Equatable, Sendable {
    /// Stage 1 only (CD with TTB0 = a per-domain table mirroring the P2M).
    case stage1
    /// Stage 2 only (STE.S2TTB = the domain's P2M root).
    case stage2
}

/// Why the driver refuses an SMMU.
public enum SMMUProbeError: Error, Equatable, Sendable {
    case noAArch64TableFormat(ttf: UInt32)
    case noTranslationStage
    case no4KGranule(idr5: UInt32)
    case bigEndianTablesOnly
    /// STALL_MODEL = 2: every fault stalls, which this driver does not serve.
    case stallForced
    /// IDR1.REL: base registers hold offsets; not supported.
    case relativeBaseAddresses
    /// IDR1.QUEUES_PRESET/TABLES_PRESET: fixed tables or queues; not supported.
    case presetTablesOrQueues(idr1: UInt32)
    case queuesTooSmall(commandLog2: Int, eventLog2: Int)
}

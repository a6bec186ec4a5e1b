/// VTCR_EL2 for a stage-2 walk with the 4 KiB granule (Arm ARM register description "VTCR_EL2",
/// "Concatenated translation tables", pseudocode `AArch64.S2InvalidSL` /
/// `AArch64.S2InconsistentSL`).
///
/// `VTCR(ipaBits:paRange:vmidWidth:)` picks the start level with the fewest
/// levels: it concatenates up to 16 root tables whenever that saves a level (as
/// KVM does), because every saved level is one memory access less on each TLB miss.
public struct VTCR: Equatable, Sendable {
    public let raw: UInt64
    /// Input (IPA) size in bits: 64 - T0SZ.
    public let ipaBits: Int
    /// The level the walk starts at (0, 1 or 2).
    public let startLevel: Int
    /// Root tables concatenated at the start level (1...16, contiguous, aligned to their total size).
    public let rootTables: Int

    // Field positions (register description "VTCR_EL2").
    static let t0szShift: UInt64 = 0
    static let sl0Shift: UInt64 = 6
    static let irgn0Shift: UInt64 = 8
    static let orgn0Shift: UInt64 = 10
    static let sh0Shift: UInt64 = 12
    static let tg0Shift: UInt64 = 14
    static let psShift: UInt64 = 16
    static let vsBit: UInt64 = 1 << 19
    /// Bit 31 is RES1.
    static let res1: UInt64 = 1 << 31
    /// IRGN0/ORGN0 = 0b01: Normal Write-Back Read-Allocate Write-Allocate cacheable walks.
    static let walkWriteBackWriteAllocate: UInt64 = 0b01
    /// TG0 = 0b00: 4 KiB granule (TG0 encodes 4K/64K/16K as 0/1/2, unlike TCR.TG1).
    static let granule4K: UInt64 = 0b00

    /// The smallest IPA a 4 KiB stage-2 walk can describe: T0SZ at most 39.
    public static let minIPABits = 25
    /// Largest IPA without FEAT_LPA2.
    public static let maxIPABits = 48
    /// SL0 = 0b10 (start at level 0) is reserved unless the PA range is at least 44 bits (S2InvalidSL).
    static let levelZeroMinimumPARange = PhysicalAddressRange.bits44

    /// Choose the start level with the fewest levels for `ipaBits`.
    public init(ipaBits: Int, paRange: PhysicalAddressRange, vmidWidth: VMIDWidth) throws(Stage2ConfigurationError) {
        guard ipaBits >= Self.minIPABits, ipaBits <= Self.maxIPABits else { throw .ipaSizeUnsupported(ipaBits) }
        // Highest start level (fewest levels) whose root, concatenated up to 16 tables, still covers the IPA.
        // Level 0 covers every IPA up to 48 bits with one table, so the search ends there.
        var level = TableLevel.leafLevel &- 1
        while Self.rootTablesNeeded(ipaBits: ipaBits, startLevel: level) > TableLevel.maxConcatenatedTables {
            level &-= 1
        }
        try self.init(ipaBits: ipaBits, startLevel: level, paRange: paRange, vmidWidth: vmidWidth)
    }

    /// An explicit start level; refuses what the architecture forbids.
    public init(ipaBits: Int, startLevel: Int, paRange: PhysicalAddressRange, vmidWidth: VMIDWidth) throws(Stage2ConfigurationError) {
        guard ipaBits >= Self.minIPABits, ipaBits <= Self.maxIPABits else { throw .ipaSizeUnsupported(ipaBits) }
        // An IPA wider than the PA range can only name memory that does not exist; the
        // architecture reports a level-0 translation fault for it (S2 "IPA size check"),
        // and KVM refuses it too (kvm_ipa_limit).
        let psRange = min(paRange, .bits48)
        guard ipaBits <= paRange.bits else { throw .ipaExceedsPhysicalRange(ipaBits: ipaBits, paBits: paRange.bits) }
        // Level 3 start needs FEAT_TTST; levels below 0 do not exist with 4 KiB.
        guard startLevel >= 0, startLevel < TableLevel.leafLevel else { throw .startLevelUnsupported(startLevel) }
        // The start level must resolve at least one bit of the IPA (S2InconsistentSL).
        guard ipaBits > Self.firstIndexedBit(startLevel) else {
            throw .startLevelTooLow(startLevel: startLevel, ipaBits: ipaBits)
        }
        let tables = Self.rootTablesNeeded(ipaBits: ipaBits, startLevel: startLevel)
        guard tables <= TableLevel.maxConcatenatedTables else {
            throw .tooManyConcatenatedTables(startLevel: startLevel, ipaBits: ipaBits)
        }
        guard startLevel != 0 || paRange >= Self.levelZeroMinimumPARange else {
            throw .levelZeroStartNeedsPARange44(paBits: paRange.bits)
        }
        let sl0: UInt64 = UInt64(2 - startLevel)  // 4 KiB: 0b00 = level 2, 0b01 = level 1, 0b10 = level 0
        var value = UInt64(64 - ipaBits) << Self.t0szShift
        value |= sl0 << Self.sl0Shift
        value |= Self.walkWriteBackWriteAllocate << Self.irgn0Shift
        value |= Self.walkWriteBackWriteAllocate << Self.orgn0Shift
        value |= UInt64(Shareability.inner.rawValue) << Self.sh0Shift
        value |= Self.granule4K << Self.tg0Shift
        value |= UInt64(psRange.rawValue) << Self.psShift
        if vmidWidth == .bits16 { value |= Self.vsBit }
        value |= Self.res1
        self.raw = value
        self.ipaBits = ipaBits
        self.startLevel = startLevel
        self.rootTables = tables
    }

    /// The IPA bit at which `startLevel` (0...2, checked by every caller)
    /// starts indexing: 39, 30 or 21 (`TableLevel.shift`, in wrapping
    /// arithmetic: the level's range makes every step exact).
    @_transparent static func firstIndexedBit(_ startLevel: Int) -> Int {
        Int(truncatingIfNeeded: PageSize.shift4K) &+ TableLevel.bitsPerLevel &* (TableLevel.leafLevel &- startLevel)
    }

    /// Root tables needed when starting at `startLevel` (0...2): 2^(ipaBits - (shift + 9)), at least 1.
    /// With ipaBits at most 48 and at least 30 bits resolved, the shift is at most 18.
    @_transparent static func rootTablesNeeded(ipaBits: Int, startLevel: Int) -> Int {
        let resolvedByOneTable = firstIndexedBit(startLevel) &+ TableLevel.bitsPerLevel
        return ipaBits <= resolvedByOneTable ? 1 : 1 &<< (ipaBits &- resolvedByOneTable)
    }

    // Decoded fields, for building an SMMU stage-2 STE (S2T0SZ, S2SL0, S2IR0, S2OR0, S2SH0, S2TG, S2PS).
    public var t0sz: UInt8 { UInt8(truncatingIfNeeded: raw >> Self.t0szShift) & 0b11_1111 }
    public var sl0: UInt8 { UInt8(truncatingIfNeeded: raw >> Self.sl0Shift) & 0b11 }
    public var irgn0: UInt8 { UInt8(truncatingIfNeeded: raw >> Self.irgn0Shift) & 0b11 }
    public var orgn0: UInt8 { UInt8(truncatingIfNeeded: raw >> Self.orgn0Shift) & 0b11 }
    public var sh0: UInt8 { UInt8(truncatingIfNeeded: raw >> Self.sh0Shift) & 0b11 }
    public var tg0: UInt8 { UInt8(truncatingIfNeeded: raw >> Self.tg0Shift) & 0b11 }
    public var ps: UInt8 { UInt8(truncatingIfNeeded: raw >> Self.psShift) & 0b111 }
    public var vmid16: Bool { raw & Self.vsBit != 0 }
    /// Bytes of the (concatenated) root, which is also its required alignment.
    public var rootBytes: UInt64 { UInt64(rootTables) << PageSize.shift4K }
}

/// Why a stage-2 configuration was refused.
public enum Stage2ConfigurationError: Error, Equatable, Sendable {
    /// IPA size outside 25...48 bits (4 KiB granule, no FEAT_LPA2).
    case ipaSizeUnsupported(Int)
    case ipaExceedsPhysicalRange(ipaBits: Int, paBits: Int)
    case startLevelUnsupported(Int)
    /// The start level resolves no bit of an IPA this small.
    case startLevelTooLow(startLevel: Int, ipaBits: Int)
    /// More than 16 concatenated tables would be needed at this start level.
    case tooManyConcatenatedTables(startLevel: Int, ipaBits: Int)
    /// SL0 = 0b10 is reserved when PARange < 44 bits.
    case levelZeroStartNeedsPARange44(paBits: Int)
    case vmidTooWide(vmid: UInt16, width: VMIDWidth)
    /// A concatenated root must be aligned to its total size.
    case rootMisaligned(MFN, requiredPages: Int)
    case rootBeyondPhysicalRange(MFN)
    case reservedPARangeEncoding(UInt8)
}

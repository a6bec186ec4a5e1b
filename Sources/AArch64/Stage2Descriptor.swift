/// VMSAv8-64 stage-2 translation table descriptor, 4 KiB granule, 48-bit output
/// (Arm ARM "Translation table descriptor formats"; stage-2 attribute fields,
/// "Stage 2 memory attributes").
///
/// ```
///  63   59 58..55 54..53 52   51..48 47 ........ 12 11 10  9..8  7..6  5..2   1   0
/// [ ign | SW[3:0] | XN  | Cont | res0 | output addr | nT AF | SH  | S2AP | MemAttr| T | V ]
/// ```
/// The four software bits carry the p2m type (Xen keeps its `p2m_type_t` there too).
/// Bits [1:0]: 0b11 is a table at levels 0-2 and a page at level 3; 0b01 is a block.
public struct Stage2Descriptor: Equatable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    // Bit positions and masks: written once, here.
    public static let validBit: UInt64 = 1 << 0
    /// Bit 1: table (levels 0-2) or page (level 3) when set, block when clear.
    public static let tableOrPageBit: UInt64 = 1 << 1
    static let memAttrShift: UInt64 = 2
    static let memAttrMask: UInt64 = 0b1111 << memAttrShift
    static let s2apShift: UInt64 = 6
    static let s2apMask: UInt64 = 0b11 << s2apShift
    static let shShift: UInt64 = 8
    static let shMask: UInt64 = 0b11 << shShift
    public static let accessFlag: UInt64 = 1 << 10
    /// Output address bits [47:12].
    public static let outputAddressMask: UInt64 = 0x0000_FFFF_FFFF_F000
    public static let contiguousBit: UInt64 = 1 << 52
    static let xnShift: UInt64 = 53
    static let xnMask: UInt64 = 0b11 << xnShift
    static let softwareShift: UInt64 = 55
    static let softwareMask: UInt64 = 0b1111 << softwareShift
    /// The four software bits [58:55], in place.
    public static var softwareBitsMask: UInt64 { softwareMask }
    /// Everything a leaf carries besides its output address and type bits.
    public static let attributeMask: UInt64 = ~outputAddressMask & ~0b11

    public static let invalid = Stage2Descriptor(raw: 0)

    @inline(__always) public var isValid: Bool { raw & Self.validBit != 0 }
    /// A table descriptor (only meaningful at levels 0-2).
    @inline(__always) public func isTable(atLevel level: Int) -> Bool {
        level < TableLevel.leafLevel && raw & 0b11 == 0b11
    }
    /// A block (levels 1-2) or page (level 3) descriptor.
    @inline(__always) public func isLeaf(atLevel level: Int) -> Bool {
        level == TableLevel.leafLevel ? raw & 0b11 == 0b11 : raw & 0b11 == 0b01
    }
    @inline(__always) public var outputFrame: MFN { MFN(raw: (raw & Self.outputAddressMask) >> PageSize.shift4K) }

    /// A table descriptor pointing at the next-level table in `frame` (stage 2 has no
    /// hierarchical attributes, so only the address and the type bits).
    @inline(__always) public static func table(_ frame: MFN) -> Stage2Descriptor {
        Stage2Descriptor(raw: frame.address.raw & outputAddressMask | 0b11)
    }
    /// A block (level 1 or 2) or page (level 3) descriptor with AF set.
    @inline(__always) public static func leaf(_ frame: MFN, level: Int, attributes: Stage2Attributes) -> Stage2Descriptor {
        Stage2Descriptor(raw: leafTemplate(level: level, attributes: attributes) | frame.address.raw & outputAddressMask)
    }
    /// The leaf bits without an output address, so a run of pages costs one OR per page.
    @inline(__always) public static func leafTemplate(level: Int, attributes: Stage2Attributes) -> UInt64 {
        let kind: UInt64 = level == TableLevel.leafLevel ? 0b11 : 0b01
        return kind | accessFlag | attributes.bits
    }

    public var memoryAttribute: Stage2MemoryAttribute? {
        Stage2MemoryAttribute(rawValue: UInt8(truncatingIfNeeded: (raw & Self.memAttrMask) >> Self.memAttrShift))
    }
    public var access: Stage2Access { Stage2Access(rawValue: UInt8(truncatingIfNeeded: (raw & Self.s2apMask) >> Self.s2apShift))! }
    public var shareability: Shareability { Shareability(rawValue: UInt8(truncatingIfNeeded: (raw & Self.shMask) >> Self.shShift))! }
    public var executeNever: Stage2ExecuteNever { Stage2ExecuteNever(rawValue: UInt8(truncatingIfNeeded: (raw & Self.xnMask) >> Self.xnShift))! }
    @inline(__always) public var softwareBits: UInt8 { UInt8(truncatingIfNeeded: (raw & Self.softwareMask) >> Self.softwareShift) }
    public var accessFlag: Bool { raw & Self.accessFlag != 0 }
    public var attributes: Stage2Attributes { Stage2Attributes(bits: raw & Self.attributeMask & ~Self.accessFlag) }
}

/// The attribute fields of a stage-2 leaf, packed at their descriptor positions.
public struct Stage2Attributes: Equatable, Sendable {
    /// MemAttr | S2AP | SH | XN | SW, at descriptor bit positions; nothing else.
    public var bits: UInt64
    @inline(__always) init(bits: UInt64) { self.bits = bits }

    public init(memory: Stage2MemoryAttribute, access: Stage2Access, shareability: Shareability,
                executeNever: Stage2ExecuteNever, softwareBits: UInt8) {
        precondition(softwareBits < 16, "four software bits")
        bits = UInt64(memory.rawValue) << Stage2Descriptor.memAttrShift
            | UInt64(access.rawValue) << Stage2Descriptor.s2apShift
            | UInt64(shareability.rawValue) << Stage2Descriptor.shShift
            | UInt64(executeNever.rawValue) << Stage2Descriptor.xnShift
            | UInt64(softwareBits) << Stage2Descriptor.softwareShift
    }
    @inline(__always) public var softwareBits: UInt8 {
        UInt8(truncatingIfNeeded: (bits & Stage2Descriptor.softwareMask) >> Stage2Descriptor.softwareShift)
    }
}

/// Stage-2 MemAttr[3:0] with FWB disabled (Arm ARM "Stage 2 memory type and Cacheability attributes when FEAT_S2FWB is disabled"): [3:2] outer, [1:0] inner for
/// Normal memory; 0b00xx is Device.
public enum Stage2MemoryAttribute: UInt8, Sendable {
    case deviceNGnRnE = 0b0000
    case deviceNGnRE = 0b0001
    /// Outer and inner Non-cacheable.
    case normalNonCacheable = 0b0101
    /// Outer and inner Write-Back cacheable.
    case normalWriteBack = 0b1111
}

/// S2AP[1:0] (Arm ARM "Stage 2 data access permissions").
public enum Stage2Access: UInt8, Sendable {
    case none = 0b00
    case readOnly = 0b01
    case writeOnly = 0b10
    case readWrite = 0b11
}

/// SH[1:0] (Arm ARM "Shareability attributes"); shared by stage-1 and stage-2 descriptors.
public enum Shareability: UInt8, Sendable {
    case nonShareable = 0b00
    case outer = 0b10
    case inner = 0b11
}

/// Stage-2 XN[1:0] at bits [54:53] (Arm ARM "Stage 2 execute-never controls"). Without FEAT_XNX only XN[1]
/// is used and bit 53 is RES0, so the per-EL cases need FEAT_XNX.
public enum Stage2ExecuteNever: UInt8, Sendable {
    /// Executable at EL1 and EL0.
    case executable = 0b00
    /// FEAT_XNX: execute-never at EL1, executable at EL0.
    case neverAtEL1 = 0b01
    /// Execute-never at EL1 and EL0.
    case never = 0b10
    /// FEAT_XNX: executable at EL1, execute-never at EL0.
    case neverAtEL0 = 0b11
}

/// VMSAv8-64 stage-2 translation table descriptor, 4 KiB granule, 48-bit output
/// (Arm ARM "Translation table descriptor formats"; stage-2 attribute fields,
/// "Stage 2 memory attributes").
///
/// ```
///  63   59 58..55 54..53 52   51..48 47 ........ 12 11 10  9..8  7..6  5..2   1   0
/// [ ign | SW[3:0] | XN  | Cont | res0 | output addr | nT AF | SH  | S2AP | MemAttr| T | V ]
/// ```
/// The four software bits carry the p2m type (Xen keeps its `p2m_type_t` there too).
/// The bits shared with stage 1 (kind, SH, AF, output address, Contiguous, SW)
/// and table/leaf construction are `VMSAv8Descriptor`'s.
public struct Stage2Descriptor: VMSAv8Descriptor, Equatable, Sendable {
    public typealias LeafAttributes = Stage2Attributes
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    // The stage-2-only bit positions and masks.
    static let memAttrShift: UInt64 = 2
    static let memAttrMask: UInt64 = 0b1111 << memAttrShift
    static let s2apShift: UInt64 = 6
    static let s2apMask: UInt64 = 0b11 << s2apShift
    static let xnShift: UInt64 = 53
    static let xnMask: UInt64 = 0b11 << xnShift
    /// The four software bits [58:55], in place.
    public static var softwareBitsMask: UInt64 { softwareMask }

    public static let invalid = Stage2Descriptor(raw: 0)

    public var memoryAttribute: Stage2MemoryAttribute? {
        Stage2MemoryAttribute(rawValue: UInt8(truncatingIfNeeded: (raw & Self.memAttrMask) >> Self.memAttrShift))
    }
    public var access: Stage2Access { Stage2Access(rawValue: UInt8(truncatingIfNeeded: (raw & Self.s2apMask) >> Self.s2apShift))! }
    public var executeNever: Stage2ExecuteNever { Stage2ExecuteNever(rawValue: UInt8(truncatingIfNeeded: (raw & Self.xnMask) >> Self.xnShift))! }
    @inline(__always) public var softwareBits: UInt8 { UInt8(truncatingIfNeeded: (raw & Self.softwareMask) >> Self.softwareShift) }
    public var attributes: Stage2Attributes { Stage2Attributes(bits: raw & Self.attributeMask & ~Self.accessFlag) }
}

/// The attribute fields of a stage-2 leaf, packed at their descriptor positions.
public struct Stage2Attributes: VMSAv8LeafAttributes, Equatable, Sendable {
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

/// VMSAv8-64 stage-1 translation table descriptor, 4 KiB granule, 48-bit output
/// (Arm ARM "Translation table descriptor formats"; stage-1 attribute fields). Used for the SMMU
/// stage-1 tables of SMMUs without stage 2 (one table engine, two formats).
///
/// ```
///  63..59 58..55 54   53   52   51..48 47 ....... 12 11 10  9..8  7..6   5  4..2      1   0
/// [ ign  |  SW  | UXN | PXN| Cont| res0 | output addr| nG AF | SH | AP[2:1]| NS| AttrIndx | T | V ]
/// ```
/// The bits shared with stage 2 (kind, SH, AF, output address, Contiguous, SW)
/// and table/leaf construction are `VMSAv8Descriptor`'s.
public struct Stage1Descriptor: VMSAv8Descriptor, Equatable, Sendable {
    public typealias LeafAttributes = Stage1Attributes
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    static let attrIndxShift: UInt64 = 2
    static let attrIndxMask: UInt64 = 0b111 << attrIndxShift
    public static let nonSecureBit: UInt64 = 1 << 5
    static let apShift: UInt64 = 6
    static let apMask: UInt64 = 0b11 << apShift
    public static let notGlobalBit: UInt64 = 1 << 11
    public static let privilegedExecuteNever: UInt64 = 1 << 53
    /// UXN for two-VA-range regimes, XN for EL2/EL3 single-range regimes.
    public static let unprivilegedExecuteNever: UInt64 = 1 << 54

    public static let invalid = Stage1Descriptor(raw: 0)

    public var attributeIndex: UInt8 { UInt8(truncatingIfNeeded: (raw & Self.attrIndxMask) >> Self.attrIndxShift) }
    public var access: Stage1Access { Stage1Access(rawValue: UInt8(truncatingIfNeeded: (raw & Self.apMask) >> Self.apShift))! }
    public var isNotGlobal: Bool { raw & Self.notGlobalBit != 0 }
    public var attributes: Stage1Attributes { Stage1Attributes(bits: raw & Self.attributeMask & ~Self.accessFlag) }
}

/// The attribute fields of a stage-1 leaf, packed at their descriptor positions.
public struct Stage1Attributes: VMSAv8LeafAttributes, Equatable, Sendable {
    public var bits: UInt64
    @inline(__always) init(bits: UInt64) { self.bits = bits }

    /// `attributeIndex` selects a MAIR byte (see `MAIR`); `notGlobal` tags the
    /// translation with the ASID.
    public init(attributeIndex: UInt8, access: Stage1Access, shareability: Shareability,
                notGlobal: Bool, privilegedExecuteNever: Bool, unprivilegedExecuteNever: Bool,
                softwareBits: UInt8 = 0) {
        precondition(attributeIndex < MAIR.attributeCount && softwareBits < 16, "AttrIndx is 3 bits, SW is 4")
        bits = UInt64(attributeIndex) << Stage1Descriptor.attrIndxShift
            | UInt64(access.rawValue) << Stage1Descriptor.apShift
            | UInt64(shareability.rawValue) << Stage1Descriptor.shShift
            | (notGlobal ? Stage1Descriptor.notGlobalBit : 0)
            | (privilegedExecuteNever ? Stage1Descriptor.privilegedExecuteNever : 0)
            | (unprivilegedExecuteNever ? Stage1Descriptor.unprivilegedExecuteNever : 0)
            | UInt64(softwareBits) << Stage1Descriptor.softwareShift
    }
    public var softwareBits: UInt8 {
        UInt8(truncatingIfNeeded: (bits & Stage1Descriptor.softwareMask) >> Stage1Descriptor.softwareShift)
    }
}

/// Stage-1 AP[2:1] (Arm ARM "Data access permissions", stage 1): AP[2] selects
/// read-only, AP[1] grants EL0 access.
public enum Stage1Access: UInt8, Sendable {
    case privilegedReadWrite = 0b00
    case readWrite = 0b01
    case privilegedReadOnly = 0b10
    case readOnly = 0b11
}

/// VMSAv8-64 stage-1 translation table descriptor, 4 KiB granule, 48-bit output
/// (Arm ARM "Translation table descriptor formats"; stage-1 attribute fields). Used for the SMMU
/// stage-1 tables of SMMUs without stage 2 (one table engine, two formats).
///
/// ```
///  63..59 58..55 54   53   52   51..48 47 ....... 12 11 10  9..8  7..6   5  4..2      1   0
/// [ ign  |  SW  | UXN | PXN| Cont| res0 | output addr| nG AF | SH | AP[2:1]| NS| AttrIndx | T | V ]
/// ```
/// Table descriptors are written without hierarchical attributes (APTable, XNTable
/// and friends zero), so every restriction lives in the leaves.
public struct Stage1Descriptor: Equatable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    public static let validBit: UInt64 = 1 << 0
    public static let tableOrPageBit: UInt64 = 1 << 1
    static let attrIndxShift: UInt64 = 2
    static let attrIndxMask: UInt64 = 0b111 << attrIndxShift
    public static let nonSecureBit: UInt64 = 1 << 5
    static let apShift: UInt64 = 6
    static let apMask: UInt64 = 0b11 << apShift
    static let shShift: UInt64 = 8
    static let shMask: UInt64 = 0b11 << shShift
    public static let accessFlag: UInt64 = 1 << 10
    public static let notGlobalBit: UInt64 = 1 << 11
    public static let outputAddressMask: UInt64 = 0x0000_FFFF_FFFF_F000
    public static let contiguousBit: UInt64 = 1 << 52
    public static let privilegedExecuteNever: UInt64 = 1 << 53
    /// UXN for two-VA-range regimes, XN for EL2/EL3 single-range regimes.
    public static let unprivilegedExecuteNever: UInt64 = 1 << 54
    static let softwareShift: UInt64 = 55
    static let softwareMask: UInt64 = 0b1111 << softwareShift
    public static let attributeMask: UInt64 = ~outputAddressMask & ~0b11

    public static let invalid = Stage1Descriptor(raw: 0)

    @inline(__always) public var isValid: Bool { raw & Self.validBit != 0 }
    @inline(__always) public func isTable(atLevel level: Int) -> Bool {
        level < TableLevel.leafLevel && raw & 0b11 == 0b11
    }
    @inline(__always) public func isLeaf(atLevel level: Int) -> Bool {
        level == TableLevel.leafLevel ? raw & 0b11 == 0b11 : raw & 0b11 == 0b01
    }
    @inline(__always) public var outputFrame: MFN { MFN(raw: (raw & Self.outputAddressMask) >> PageSize.shift4K) }

    @inline(__always) public static func table(_ frame: MFN) -> Stage1Descriptor {
        Stage1Descriptor(raw: frame.address.raw & outputAddressMask | 0b11)
    }
    @inline(__always) public static func leaf(_ frame: MFN, level: Int, attributes: Stage1Attributes) -> Stage1Descriptor {
        Stage1Descriptor(raw: leafTemplate(level: level, attributes: attributes) | frame.address.raw & outputAddressMask)
    }
    @inline(__always) public static func leafTemplate(level: Int, attributes: Stage1Attributes) -> UInt64 {
        let kind: UInt64 = level == TableLevel.leafLevel ? 0b11 : 0b01
        return kind | accessFlag | attributes.bits
    }

    public var attributeIndex: UInt8 { UInt8(truncatingIfNeeded: (raw & Self.attrIndxMask) >> Self.attrIndxShift) }
    public var access: Stage1Access { Stage1Access(rawValue: UInt8(truncatingIfNeeded: (raw & Self.apMask) >> Self.apShift))! }
    public var shareability: Shareability { Shareability(rawValue: UInt8(truncatingIfNeeded: (raw & Self.shMask) >> Self.shShift))! }
    public var isNotGlobal: Bool { raw & Self.notGlobalBit != 0 }
    public var accessFlag: Bool { raw & Self.accessFlag != 0 }
    public var attributes: Stage1Attributes { Stage1Attributes(bits: raw & Self.attributeMask & ~Self.accessFlag) }
}

/// The attribute fields of a stage-1 leaf, packed at their descriptor positions.
public struct Stage1Attributes: Equatable, Sendable {
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

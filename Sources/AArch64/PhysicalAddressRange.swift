/// ID_AA64MMFR0_EL1.PARange [3:0], also the encoding of VTCR_EL2.PS and TCR_ELx.IPS
/// (Arm ARM register description "ID_AA64MMFR0_EL1").
public enum PhysicalAddressRange: UInt8, Sendable, Comparable {
    case bits32 = 0b0000
    case bits36 = 0b0001
    case bits40 = 0b0010
    case bits42 = 0b0011
    case bits44 = 0b0100
    case bits48 = 0b0101
    /// FEAT_LPA; descriptors here carry 48-bit output addresses, so VTCR.PS is capped at 48.
    case bits52 = 0b0110

    static let fieldMask: UInt64 = 0b1111

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// Decode ID_AA64MMFR0_EL1; nil for a reserved encoding.
    public init?(idAA64MMFR0 value: UInt64) {
        self.init(rawValue: UInt8(truncatingIfNeeded: value & Self.fieldMask))
    }

    /// Decode ID_AA64MMFR0_EL1, refusing a reserved encoding with a typed error.
    public static func decode(idAA64MMFR0 value: UInt64) throws(Stage2ConfigurationError) -> PhysicalAddressRange {
        guard let range = PhysicalAddressRange(idAA64MMFR0: value) else {
            throw .reservedPARangeEncoding(UInt8(truncatingIfNeeded: value & fieldMask))
        }
        return range
    }

    public var bits: Int {
        switch self {
        case .bits32: 32
        case .bits36: 36
        case .bits40: 40
        case .bits42: 42
        case .bits44: 44
        case .bits48: 48
        case .bits52: 52
        }
    }
}

/// The VMID width: ID_AA64MMFR1_EL1.VMIDBits [7:4] (0b0000 = 8 bits, 0b0010 = 16 bits).
public enum VMIDWidth: Sendable, Equatable {
    case bits8
    case bits16

    static let fieldShift: UInt64 = 4
    static let fieldMask: UInt64 = 0b1111
    static let sixteenBits: UInt64 = 0b0010

    public init(idAA64MMFR1 value: UInt64) {
        self = (value >> Self.fieldShift) & Self.fieldMask == Self.sixteenBits ? .bits16 : .bits8
    }
    public var maxVMID: UInt16 { self == .bits16 ? UInt16.max : UInt16(UInt8.max) }
    public var bits: Int { self == .bits16 ? 16 : 8 }
}

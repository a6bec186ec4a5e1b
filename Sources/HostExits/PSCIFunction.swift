/// SMC Calling Convention function identifiers (Arm DEN0028, section 2.5):
/// bit 31 fast call, bit 30 SMC64, bits [29:24] the owning entity, [15:0] the
/// function number. Bits [23:16] must be zero for a fast call.
public struct SMCCCFunctionID: Equatable, Sendable {
    public var raw: UInt32
    @inline(__always) public init(raw: UInt32) { self.raw = raw }

    static let fastCallBit: UInt32 = 1 << 31
    static let smc64Bit: UInt32 = 1 << 30
    static let ownerShift: UInt32 = 24
    static let ownerMask: UInt32 = 0x3F
    static let reservedMask: UInt32 = 0x00FF_0000
    static let numberMask: UInt32 = 0xFFFF

    /// DEN0028 table 6-4: owning entity numbers.
    public static let ownerArchitecture: UInt8 = 0
    public static let ownerStandardSecure: UInt8 = 4

    /// Only the low 32 bits of W0/X0 name the function (DEN0028 2.5: "the
    /// Function Identifier is passed in W0"); the upper half is ignored.
    @inline(__always) public init(x0: UInt64) { raw = UInt32(truncatingIfNeeded: x0) }

    public var isFastCall: Bool { raw & Self.fastCallBit != 0 }
    public var isSMC64: Bool { raw & Self.smc64Bit != 0 }
    public var owner: UInt8 { UInt8(raw >> Self.ownerShift & Self.ownerMask) }
    public var number: UInt16 { UInt16(raw & Self.numberMask) }
    /// A fast call with non-zero bits [23:16] is malformed (DEN0028 2.5).
    public var hasReservedBits: Bool { raw & Self.reservedMask != 0 }
}

/// The PSCI functions a host may call (Arm DEN0022, table 5-1); each has an
/// SMC32 ID `0x8400_00nn` and, where it takes an address or MPIDR, an SMC64 ID
/// `0xC400_00nn`. `other` keeps the number of anything not listed.
public enum PSCIFunction: Equatable, Sendable {
    case version
    case cpuSuspend
    case cpuOff
    case cpuOn
    case affinityInfo
    case migrate
    case migrateInfoType
    case migrateInfoUpCPU
    case systemOff
    case systemReset
    case features
    case cpuFreeze
    case cpuDefaultSuspend
    case nodeHWState
    case systemSuspend
    case setSuspendMode
    case statResidency
    case statCount
    case systemReset2
    case memProtect
    case memProtectCheckRange
    case other(UInt16)

    /// Decodes the function number of a standard-secure-service fast call.
    public init(number: UInt16) {
        switch number {
        case 0x00: self = .version
        case 0x01: self = .cpuSuspend
        case 0x02: self = .cpuOff
        case 0x03: self = .cpuOn
        case 0x04: self = .affinityInfo
        case 0x05: self = .migrate
        case 0x06: self = .migrateInfoType
        case 0x07: self = .migrateInfoUpCPU
        case 0x08: self = .systemOff
        case 0x09: self = .systemReset
        case 0x0A: self = .features
        case 0x0B: self = .cpuFreeze
        case 0x0C: self = .cpuDefaultSuspend
        case 0x0D: self = .nodeHWState
        case 0x0E: self = .systemSuspend
        case 0x0F: self = .setSuspendMode
        case 0x10: self = .statResidency
        case 0x11: self = .statCount
        case 0x12: self = .systemReset2
        case 0x13: self = .memProtect
        case 0x14: self = .memProtectCheckRange
        default: self = .other(number)
        }
    }

    /// The function number, bits [15:0] of its IDs.
    public var number: UInt16 {
        switch self {
        case .version: 0x00
        case .cpuSuspend: 0x01
        case .cpuOff: 0x02
        case .cpuOn: 0x03
        case .affinityInfo: 0x04
        case .migrate: 0x05
        case .migrateInfoType: 0x06
        case .migrateInfoUpCPU: 0x07
        case .systemOff: 0x08
        case .systemReset: 0x09
        case .features: 0x0A
        case .cpuFreeze: 0x0B
        case .cpuDefaultSuspend: 0x0C
        case .nodeHWState: 0x0D
        case .systemSuspend: 0x0E
        case .setSuspendMode: 0x0F
        case .statResidency: 0x10
        case .statCount: 0x11
        case .systemReset2: 0x12
        case .memProtect: 0x13
        case .memProtectCheckRange: 0x14
        case .other(let number): number
        }
    }

    /// DEN0022 table 5-1: the functions that have an SMC64 form. Calling the
    /// SMC64 ID of any other function is not a PSCI call at all.
    public var hasSMC64Form: Bool {
        switch self {
        case .cpuSuspend, .cpuOn, .affinityInfo, .migrate, .migrateInfoUpCPU, .cpuDefaultSuspend,
             .nodeHWState, .systemSuspend, .statResidency, .statCount, .systemReset2, .memProtectCheckRange:
            true
        default:
            false
        }
    }

    /// The SMC32 function ID (`0x8400_0000 | number`).
    public static func smc32ID(_ number: UInt16) -> UInt32 { PSCIReturn.psciBase32 | UInt32(number) }
    /// The SMC64 function ID (`0xC400_0000 | number`).
    public static func smc64ID(_ number: UInt16) -> UInt32 { PSCIReturn.psciBase64 | UInt32(number) }
}

/// PSCI return codes (DEN0022 table 5-2), as the signed value the caller reads
/// from X0, and the version words the hypervisor answers itself.
public enum PSCIReturn {
    public static let success: Int64 = 0
    public static let notSupported: Int64 = -1
    public static let invalidParameters: Int64 = -2
    public static let denied: Int64 = -3
    public static let alreadyOn: Int64 = -4
    public static let onPending: Int64 = -5
    public static let internalFailure: Int64 = -6
    public static let notPresent: Int64 = -7
    public static let disabled: Int64 = -8
    public static let invalidAddress: Int64 = -9

    /// AFFINITY_INFO results (DEN0022 5.1.5).
    public static let affinityOn: Int64 = 0
    public static let affinityOff: Int64 = 1
    public static let affinityOnPending: Int64 = 2

    static let psciBase32: UInt32 = 0x8400_0000
    static let psciBase64: UInt32 = 0xC400_0000

    /// SMCCC_VERSION's answer: v1.1 (major in [30:16], minor in [15:0]), the
    /// version whose ARCH_FEATURES query Linux relies on (DEN0028 7.2).
    public static let smcccVersion1_1: Int64 = 0x1_0001

    /// The X0 bit pattern of a signed return value (a 32-bit call's result is
    /// sign-extended into X0 as well; DEN0028 2.6 leaves the upper half
    /// unknown, and a sign-extended value reads correctly either way).
    @inline(__always) public static func x0(_ value: Int64) -> UInt64 { UInt64(bitPattern: value) }
}

/// Architecture calls of SMCCC (DEN0028 section 7), owner 0.
public enum SMCCCArchFunction {
    public static let version: UInt32 = 0x8000_0000
    public static let archFeatures: UInt32 = 0x8000_0001
    public static let archSoCID: UInt32 = 0x8000_0002
    public static let workaround1: UInt32 = 0x8000_8000
    public static let workaround2: UInt32 = 0x8000_7FFF
    public static let workaround3: UInt32 = 0x8000_3FFF
}

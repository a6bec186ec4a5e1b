import AArch64

/// An event record: 32 bytes, four dwords (IHI 0070 7.3).
public struct SMMUEvent: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case unsupportedUpstreamTransaction  // 0x01 F_UUT
        case badStreamID                     // 0x02 C_BAD_STREAMID
        case steFetch                        // 0x03 F_STE_FETCH
        case badSTE                          // 0x04 C_BAD_STE
        case streamDisabled                  // 0x06 F_STREAM_DISABLED
        case translationForbidden            // 0x07 F_TRANSL_FORBIDDEN
        case badSubstreamID                  // 0x08 C_BAD_SUBSTREAMID
        case cdFetch                         // 0x09 F_CD_FETCH
        case badCD                           // 0x0A C_BAD_CD
        case walkExternalAbort               // 0x0B F_WALK_EABT
        case translation                     // 0x10 F_TRANSLATION
        case addressSize                     // 0x11 F_ADDR_SIZE
        case access                          // 0x12 F_ACCESS
        case permission                      // 0x13 F_PERMISSION
        case tlbConflict                     // 0x20 F_TLB_CONFLICT
        case configConflict                  // 0x21 F_CFG_CONFLICT
        case other(UInt8)

        public init(id: UInt8) {
            switch id {
            case 0x01: self = .unsupportedUpstreamTransaction
            case 0x02: self = .badStreamID
            case 0x03: self = .steFetch
            case 0x04: self = .badSTE
            case 0x06: self = .streamDisabled
            case 0x07: self = .translationForbidden
            case 0x08: self = .badSubstreamID
            case 0x09: self = .cdFetch
            case 0x0A: self = .badCD
            case 0x0B: self = .walkExternalAbort
            case 0x10: self = .translation
            case 0x11: self = .addressSize
            case 0x12: self = .access
            case 0x13: self = .permission
            case 0x20: self = .tlbConflict
            case 0x21: self = .configConflict
            default: self = .other(id)
            }
        }

        /// One number per case, distinct for every value (`.other(id)` above the
        /// named cases' ids), so `==` compares two small integers: the derived
        /// equality of an enum with a payload case is a pairwise match.
        var code: UInt16 {
            switch self {
            case .unsupportedUpstreamTransaction: 0x01
            case .badStreamID: 0x02
            case .steFetch: 0x03
            case .badSTE: 0x04
            case .streamDisabled: 0x06
            case .translationForbidden: 0x07
            case .badSubstreamID: 0x08
            case .cdFetch: 0x09
            case .badCD: 0x0A
            case .walkExternalAbort: 0x0B
            case .translation: 0x10
            case .addressSize: 0x11
            case .access: 0x12
            case .permission: 0x13
            case .tlbConflict: 0x20
            case .configConflict: 0x21
            case .other(let id): 0x100 | UInt16(id)
            }
        }

        public static func == (a: Kind, b: Kind) -> Bool { a.code == b.code }

        /// Translation-related faults carry S2/CLASS/RnW and an IPA (IHI 0070 7.3.12-15).
        public var isTranslationFault: Bool {
            switch self {
            case .translation, .addressSize, .access, .permission: return true
            default: return false
            }
        }
        /// Fetch-abort events carry a fetch PA in dw3.
        public var carriesFetchAddress: Bool {
            switch self {
            case .steFetch, .cdFetch, .walkExternalAbort: return true
            default: return false
            }
        }
    }

    /// CLASS (IHI 0070 7.3): what the faulting access was doing.
    public enum FaultClass: UInt8, Equatable, Sendable {
        case contextDescriptorFetch = 0
        case tableWalk = 1
        case inputAddress = 2
        case reserved = 3
    }

    public var dw0: UInt64
    public var dw1: UInt64
    public var dw2: UInt64
    public var dw3: UInt64

    public static let bytes: UInt64 = 32
    public static let idMask: UInt64 = 0xFF
    public static let substreamValid: UInt64 = 1 << 11
    public static let substreamShift: UInt64 = 12
    public static let substreamMask: UInt64 = 0xF_FFFF
    public static let streamShift: UInt64 = 32
    public static let privileged: UInt64 = 1 << 33
    public static let instruction: UInt64 = 1 << 34
    public static let readNotWrite: UInt64 = 1 << 35
    public static let stage2Fault: UInt64 = 1 << 39
    public static let classShift: UInt64 = 40
    public static let classMask: UInt64 = 0b11
    public static let ipaMask: UInt64 = 0x000F_FFFF_FFFF_F000  // [51:12]
    public static let fetchAddressMask: UInt64 = 0x000F_FFFF_FFFF_FFF8  // [51:3]

    public init(dw0: UInt64, dw1: UInt64, dw2: UInt64, dw3: UInt64) {
        self.dw0 = dw0
        self.dw1 = dw1
        self.dw2 = dw2
        self.dw3 = dw3
    }

    public var id: UInt8 { UInt8(dw0 & Self.idMask) }
    public var kind: Kind { Kind(id: id) }
    public var stream: StreamID { StreamID(UInt32(truncatingIfNeeded: dw0 >> Self.streamShift)) }
    /// The SubstreamID if SSV was set.
    public var substream: UInt32? {
        dw0 & Self.substreamValid != 0 ? UInt32(dw0 >> Self.substreamShift & Self.substreamMask) : nil
    }
    public var isRead: Bool { dw1 & Self.readNotWrite != 0 }
    public var isStage2: Bool { dw1 & Self.stage2Fault != 0 }
    public var isPrivileged: Bool { dw1 & Self.privileged != 0 }
    public var isInstruction: Bool { dw1 & Self.instruction != 0 }
    public var faultClass: FaultClass { FaultClass(rawValue: UInt8(dw1 >> Self.classShift & Self.classMask))! }
    /// The address the device presented (IOVA).
    public var inputAddress: IOVA { IOVA(dw2) }
    /// For stage-2 translation faults: the faulting IPA.
    public var ipa: IPA? { kind.isTranslationFault && isStage2 ? IPA(dw3 & Self.ipaMask) : nil }
    /// For STE/CD fetch and walk external aborts: the PA being fetched.
    public var fetchAddress: PhysAddr? { kind.carriesFetchAddress ? PhysAddr(dw3 & Self.fetchAddressMask) : nil }

    /// Build from the eight 32-bit words as printed by a dump (word 0 first).
    public init(words w: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)) {
        self.init(dw0: UInt64(w.0) | UInt64(w.1) << 32, dw1: UInt64(w.2) | UInt64(w.3) << 32,
                  dw2: UInt64(w.4) | UInt64(w.5) << 32, dw3: UInt64(w.6) | UInt64(w.7) << 32)
    }
}

/// ESR_ELx, the exception syndrome register (Arm ARM D23.2.41).
///
/// Only what the hypervisor needs to report or dispatch: the exception class,
/// the instruction-length bit, the ISS, and the data/instruction abort fields
/// (DFSC/IFSC fault status, WnR, S1PTW, FnV).
public struct ExceptionSyndrome: Equatable, Sendable {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }

    static let classShift: UInt64 = 26
    static let classMask: UInt64 = 0x3F
    static let instructionLengthBit: UInt64 = 1 << 25
    static let issMask: UInt64 = (1 << 25) - 1
    static let faultStatusMask: UInt64 = 0x3F
    static let writeNotReadBit: UInt64 = 1 << 6
    static let stage1WalkBit: UInt64 = 1 << 7
    static let farNotValidBit: UInt64 = 1 << 10

    /// Builds a syndrome to inject into a lower EL: EC `classCode`, IL set
    /// (a 32-bit instruction; RES1 for the abort and unknown classes), and an
    /// abort ISS of fault status `faultStatus` with WnR = `write`.
    public init(injecting classCode: UInt8, faultStatus: UInt8 = 0, write: Bool = false) {
        raw = (UInt64(classCode) & Self.classMask) << Self.classShift | Self.instructionLengthBit
            | UInt64(faultStatus) & Self.faultStatusMask | (write ? Self.writeNotReadBit : 0)
    }

    /// EC, bits [31:26].
    public var exceptionClass: ExceptionClass { ExceptionClass(code: UInt8(raw >> Self.classShift & Self.classMask)) }
    /// IL, bit 25: 1 for a 32-bit instruction.
    public var is32BitInstruction: Bool { raw & Self.instructionLengthBit != 0 }
    /// ISS, bits [24:0].
    public var iss: UInt32 { UInt32(raw & Self.issMask) }
    /// DFSC/IFSC, ISS bits [5:0], for aborts.
    public var faultStatus: UInt8 { UInt8(raw & Self.faultStatusMask) }
    /// DFSC/IFSC decoded, for aborts.
    public var fault: FaultStatus { FaultStatus(code: faultStatus) }
    /// WnR, ISS bit 6, for data aborts: the access was a write.
    public var isWrite: Bool { raw & Self.writeNotReadBit != 0 }
    /// S1PTW, ISS bit 7: the stage-2 fault happened on a stage-1 table walk.
    public var onStage1Walk: Bool { raw & Self.stage1WalkBit != 0 }
    /// FnV, ISS bit 10, for aborts: set when FAR_ELx does not hold the faulting address.
    public var farIsValid: Bool { raw & Self.farNotValidBit == 0 }
}

/// ESR_ELx.EC values the hypervisor distinguishes (Arm ARM D23.2.41, table "EC").
public enum ExceptionClass: Equatable, Sendable {
    case unknown
    case trappedWFxInstruction
    case illegalExecutionState
    case svc64
    case hvc64
    case smc64
    case systemRegisterTrap
    case instructionAbortLowerEL
    case instructionAbortSameEL
    case pcAlignment
    case dataAbortLowerEL
    case dataAbortSameEL
    case spAlignment
    case serror
    case brk64
    case other(UInt8)

    /// The named class with EC `code`, else `.other(code)`: a search of the
    /// table of named classes (a 16-way switch was a jump table and a
    /// constant per case).
    public init(code: UInt8) {
        for i in 0..<Self.named.count where Self.named[i].code == code {
            self = Self.named[i]
            return
        }
        self = .other(code)
    }

    /// Every named class, in declaration order (`index`): EC values 0x00,
    /// 0x01, 0x0E, 0x15-0x18, 0x20-0x22, 0x24-0x26, 0x2F, 0x3C.
    static let named: InlineArray<15, ExceptionClass> = [
        .unknown, .trappedWFxInstruction, .illegalExecutionState, .svc64, .hvc64, .smc64, .systemRegisterTrap,
        .instructionAbortLowerEL, .instructionAbortSameEL, .pcAlignment, .dataAbortLowerEL, .dataAbortSameEL,
        .spAlignment, .serror, .brk64,
    ]

    /// The EC value: `init(code:)` reversed. Every case has exactly one code
    /// (`.other` carries the codes no named case has), so two classes are equal
    /// exactly when their codes are.
    public var code: UInt8 {
        switch self {
        case .unknown: 0x00
        case .trappedWFxInstruction: 0x01
        case .illegalExecutionState: 0x0E
        case .svc64: 0x15
        case .hvc64: 0x16
        case .smc64: 0x17
        case .systemRegisterTrap: 0x18
        case .instructionAbortLowerEL: 0x20
        case .instructionAbortSameEL: 0x21
        case .pcAlignment: 0x22
        case .dataAbortLowerEL: 0x24
        case .dataAbortSameEL: 0x25
        case .spAlignment: 0x26
        case .serror: 0x2F
        case .brk64: 0x3C
        case .other(let code): code
        }
    }

    /// Compares EC values: a few instructions, where the synthesized
    /// comparison switches over every case pair.
    public static func == (a: Self, b: Self) -> Bool { a.code == b.code }

    /// A short name for console reports: one table read (a switch returning
    /// a different string per case was a jump table with a string load each).
    public var name: StaticString { Self.names[index] }

    /// The case's position in `names` (declaration order; `.other` last).
    @_transparent var index: Int {
        switch self {
        case .unknown: 0
        case .trappedWFxInstruction: 1
        case .illegalExecutionState: 2
        case .svc64: 3
        case .hvc64: 4
        case .smc64: 5
        case .systemRegisterTrap: 6
        case .instructionAbortLowerEL: 7
        case .instructionAbortSameEL: 8
        case .pcAlignment: 9
        case .dataAbortLowerEL: 10
        case .dataAbortSameEL: 11
        case .spAlignment: 12
        case .serror: 13
        case .brk64: 14
        case .other: 15
        }
    }

    static let names: InlineArray<16, StaticString> = [
        "unknown reason", "trapped WFI/WFE", "illegal execution state", "SVC", "HVC", "SMC",
        "system register trap", "instruction abort (lower EL)", "instruction abort (EL2)", "PC alignment fault",
        "data abort (lower EL)", "data abort (EL2)", "SP alignment fault", "SError", "BRK (Swift trap)", "other",
    ]
}

/// A fault status code: ESR_ELx.ISS.DFSC/IFSC and PAR_EL1.FST share it
/// (Arm ARM D23.2.41): bits [5:2] the kind, bits [1:0] the lookup level.
public enum FaultStatus: Equatable, Sendable {
    case addressSize(level: UInt8)
    case translation(level: UInt8)
    case accessFlag(level: UInt8)
    case permission(level: UInt8)
    case other(UInt8)

    static let levelMask: UInt8 = 0b11
    static let kindShift: UInt8 = 2

    public init(code: UInt8) {
        let level = code & Self.levelMask
        switch code >> Self.kindShift {
        case 0b0000: self = .addressSize(level: level)
        case 0b0001: self = .translation(level: level)
        case 0b0010: self = .accessFlag(level: level)
        case 0b0011: self = .permission(level: level)
        default: self = .other(code)
        }
    }

    public var isTranslation: Bool { if case .translation = self { true } else { false } }
    public var isPermission: Bool { if case .permission = self { true } else { false } }
}

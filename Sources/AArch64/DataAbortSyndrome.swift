/// The ISS of a data abort taken to EL2 (ESR_EL2.ISS for EC 0x24/0x25, Arm ARM
/// D23.2.41 "ISS encoding for an exception from a Data Abort"). When ISV is
/// set, the syndrome describes a single load or store of one general-purpose
/// register, which is what a hypervisor needs to emulate an MMIO access.
public struct DataAbortSyndrome: Equatable, Sendable {
    public var iss: UInt32
    @inline(__always) public init(iss: UInt32) { self.iss = iss }
    @inline(__always) public init(_ syndrome: ExceptionSyndrome) { iss = syndrome.iss }

    static let validBit: UInt32 = 1 << 24
    static let accessSizeShift: UInt32 = 22
    static let accessSizeMask: UInt32 = 0b11
    static let signExtendBit: UInt32 = 1 << 21
    static let registerShift: UInt32 = 16
    static let registerMask: UInt32 = 0b1_1111
    static let sixtyFourBitRegisterBit: UInt32 = 1 << 15
    static let acquireReleaseBit: UInt32 = 1 << 14
    static let farNotValidBit: UInt32 = 1 << 10
    static let externalAbortTypeBit: UInt32 = 1 << 9
    static let cacheMaintenanceBit: UInt32 = 1 << 8
    static let stage1WalkBit: UInt32 = 1 << 7
    static let writeNotReadBit: UInt32 = 1 << 6
    static let faultStatusMask: UInt32 = 0b11_1111

    /// ISV, bit 24: bits [23:14] hold a valid instruction syndrome.
    public var isValid: Bool { iss & Self.validBit != 0 }
    /// SAS, bits [23:22]: the access size in bytes (1, 2, 4 or 8).
    public var accessBytes: Int { 1 << Int(iss >> Self.accessSizeShift & Self.accessSizeMask) }
    /// SSE, bit 21: a narrower load is sign-extended into the register.
    public var signExtends: Bool { iss & Self.signExtendBit != 0 }
    /// SRT, bits [20:16]: the register transferred; 31 is XZR/WZR here.
    public var register: Int { Int(iss >> Self.registerShift & Self.registerMask) }
    /// SF, bit 15: the register is 64-bit (X), else 32-bit (W).
    public var sixtyFourBitRegister: Bool { iss & Self.sixtyFourBitRegisterBit != 0 }
    /// AR, bit 14: acquire/release semantics.
    public var acquireRelease: Bool { iss & Self.acquireReleaseBit != 0 }
    /// FnV, bit 10: FAR is not valid.
    public var farNotValid: Bool { iss & Self.farNotValidBit != 0 }
    /// EA, bit 9: implementation-defined external abort type.
    public var externalAbortType: Bool { iss & Self.externalAbortTypeBit != 0 }
    /// CM, bit 8: the fault came from a cache maintenance or address translation instruction.
    public var isCacheMaintenance: Bool { iss & Self.cacheMaintenanceBit != 0 }
    /// S1PTW, bit 7: the fault happened on a stage-1 translation table walk.
    public var onStage1Walk: Bool { iss & Self.stage1WalkBit != 0 }
    /// WnR, bit 6: the access was a write.
    public var isWrite: Bool { iss & Self.writeNotReadBit != 0 }
    /// DFSC, bits [5:0].
    public var faultStatus: UInt8 { UInt8(iss & Self.faultStatusMask) }
}

/// The CPU's ID registers that size stage 2 and choose its TLB maintenance,
/// as raw values (the board reads them once at boot; tests give them), decoded
/// only here.
public struct CPUIDRegisters: Equatable, Sendable {
    /// ID_AA64MMFR0_EL1: PARange [3:0].
    public var mmfr0: UInt64
    /// ID_AA64MMFR1_EL1: VMIDBits [7:4].
    public var mmfr1: UInt64
    /// ID_AA64ISAR0_EL1: TLB [59:56].
    public var isar0: UInt64

    public init(mmfr0: UInt64, mmfr1: UInt64, isar0: UInt64) {
        self.mmfr0 = mmfr0
        self.mmfr1 = mmfr1
        self.isar0 = isar0
    }

    static let tlbShift: UInt64 = 56
    static let tlbMask: UInt64 = 0b1111
    /// TLB = 0b0010: FEAT_TLBIRANGE (and the outer-shareable forms); 0b0001 has only the latter.
    static let tlbRange: UInt64 = 0b0010

    /// PARange. ID fields of this kind only grow with the feature (Arm ARM
    /// "Principles of the ID scheme for fields in ID registers"), so an encoding
    /// above the last one this code names (0b0111 is 56 bits with FEAT_D128)
    /// still means at least 52 bits: it reads as `.bits52`, never as less.
    public var physicalAddressRange: PhysicalAddressRange {
        PhysicalAddressRange(idAA64MMFR0: mmfr0) ?? .bits52
    }

    public var vmidWidth: VMIDWidth { VMIDWidth(idAA64MMFR1: mmfr1) }

    /// `TLBI RIPAS2E1IS` and the other range forms exist.
    public var hasTLBIRange: Bool { isar0 >> Self.tlbShift & Self.tlbMask >= Self.tlbRange }
}

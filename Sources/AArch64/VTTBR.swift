/// VTTBR_EL2: stage-2 root address and VMID (Arm ARM register description "VTTBR_EL2").
/// BADDR occupies [47:1] (bit 0 is CnP, left 0); the root of concatenated tables
/// must be aligned to their total size. VMID is [63:48], or [55:48] with 8-bit VMIDs.
public struct VTTBR: Equatable, Sendable {
    public let raw: UInt64

    @usableFromInline static let vmidShift: UInt64 = 48
    @usableFromInline static let baddrMask: UInt64 = 0x0000_FFFF_FFFF_FFFE

    @_transparent public init(root: MFN, vmid: UInt16, vtcr: VTCR, vmidWidth: VMIDWidth) throws(Stage2ConfigurationError) {
        guard vmid <= vmidWidth.maxVMID else { throw .vmidTooWide(vmid: vmid, width: vmidWidth) }
        guard root.raw & UInt64(vtcr.rootTables - 1) == 0 else {
            throw .rootMisaligned(root, requiredPages: vtcr.rootTables)
        }
        guard root.address.raw & ~Self.baddrMask == 0, root.address.raw >> 48 == 0 else {
            throw .rootBeyondPhysicalRange(root)
        }
        raw = UInt64(vmid) << Self.vmidShift | root.address.raw & Self.baddrMask
    }

    /// A value read back from the register (or handed over by another agent),
    /// taken as it is.
    public init(raw: UInt64) { self.raw = raw }

    public var vmid: UInt16 { UInt16(truncatingIfNeeded: raw >> Self.vmidShift) }
    public var root: PhysAddr { PhysAddr(raw: raw & Self.baddrMask) }
}

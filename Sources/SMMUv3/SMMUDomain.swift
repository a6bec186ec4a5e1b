import AArch64

/// A stage-2 DMA domain: the STE points straight at the domain's P2M, one
/// table shared by the CPU and the SMMU (as Xen does when the SMMU has stage 2).
public struct Stage2Domain: Equatable, Sendable {
    public var vmid: UInt16
    /// The P2M root (VTTBR_EL2.BADDR).
    public var root: PhysAddr
    /// The P2M's VTCR_EL2 value; T0SZ, SL0, IRGN0, ORGN0, SH0, TG0 and PS are
    /// copied into the STE.
    public var vtcr: UInt64
    /// VTCR_EL2.T0SZ, bits [5:0] (the STE's S2T0SZ).
    static let t0szMask: UInt64 = 0x3F

    public init(vmid: UInt16, root: PhysAddr, vtcr: UInt64) {
        self.vmid = vmid
        self.root = root
        self.vtcr = vtcr
    }

    /// From the P2M's own registers (`p2m.vttbr`, `p2m.vtcr`).
    public init(vttbr: VTTBR, vtcr: VTCR) { self.init(vttbr: vttbr, vtcr: vtcr.raw) }

    /// From register values (VMID and BADDR decoded by `VTTBR`).
    public init(vttbr: VTTBR, vtcr: UInt64) {
        self.init(vmid: vttbr.vmid, root: vttbr.root, vtcr: vtcr)
    }
}

/// A stage-1 DMA domain: a CD whose TTB0 is a per-domain stage-1 table (the
/// mirror of the P2M when the SMMU has no stage 2). Made by `SMMU.makeStage1Domain`.
public struct Stage1Domain: Equatable, Sendable {
    public let asid: UInt16
    public let root: PhysAddr
    public let inputBits: Int
    /// The CD this domain's streams point at.
    public let contextDescriptor: PhysAddr
}

public enum SMMUDomain: Equatable, Sendable {
    case stage1(Stage1Domain)
    case stage2(Stage2Domain)

    public var invalidationScope: InvalidationScope {
        switch self {
        case .stage1(let d): return .stage1(asid: d.asid, vmid: 0)
        case .stage2(let d): return .stage2(vmid: d.vmid)
        }
    }
}

import AArch64
import Translation

/// One P2M hook type for both SMMU modes, so one board image drives QEMU 7.2
/// (stage 1 only: a stage-1 mirror of the P2M) and QEMU 10 (stage 2: the P2M
/// itself) with the same P2M type. Pass the same instance as the P2M's
/// `iommu` and `observer`; attach streams to `domain(vttbr:vtcr:)`.
///
/// ```
/// let hooks = try SMMUDomainHooks.make(handle: smmu, asid: 1, ipaBits: 40, pool: mirrorPool, allocator: &frames)
/// var p2m = try P2M<DeviceDomain>(configuration: cfg, memory: mem, pool: p2mPool, tlb: tlb,
///                   iommu: hooks, listener: listener, observer: hooks)
/// try smmu.smmu.attach(sid, to: hooks.domain(vttbr: p2m.vttbr, vtcr: p2m.vtcr), allocator: &frames)
/// ```
public final class SMMUDomainHooks<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance, Pool: TablePageSource>:
    P2MChangeObserver, IOMMUInvalidator
{
    public let handle: SMMUHandle<R, M, C>
    /// The stage-1 mirror when the SMMU runs in stage-1 mode, nil in stage-2 mode.
    public let mirror: Stage1Mirror<R, M, C, Pool>?
    var stage2: SMMUStage2Invalidator<R, M, C>

    /// In stage-1 mode, builds the mirror (with `asid`, covering `ipaBits`, its
    /// tables from `pool`, reaching the `msiDoorbells` pages where the P2M maps
    /// them as MMIO); in stage-2 mode `asid`, `pool` and `msiDoorbells` are
    /// unused: the SMMU walks the P2M itself, doorbell included.
    public static func make<A: ContiguousFrameAllocator>(
        handle: SMMUHandle<R, M, C>, asid: UInt16, ipaBits: Int, pool: Pool, msiDoorbells: [MFN] = [],
        allocator: inout A
    ) throws(Stage1MirrorError) -> SMMUDomainHooks {
        let mirror = handle.smmu.mode == .stage1
            ? try Stage1Mirror.make(handle: handle, asid: asid, inputBits: ipaBits, pool: pool,
                                    msiDoorbells: msiDoorbells, allocator: &allocator)
            : nil
        return SMMUDomainHooks(handle: handle, mirror: mirror)
    }

    init(handle: SMMUHandle<R, M, C>, mirror: Stage1Mirror<R, M, C, Pool>?) {
        self.handle = handle
        self.mirror = mirror
        stage2 = SMMUStage2Invalidator(handle: handle)
    }

    public var mode: TranslationMode { mirror == nil ? .stage2 : .stage1 }

    /// What to attach the domain's streams to: the mirror's CD, or the P2M itself.
    public func domain(vttbr: VTTBR, vtcr: VTCR) -> SMMUDomain {
        if let mirror { return .stage1(mirror.domain) }
        return .stage2(Stage2Domain(vttbr: vttbr, vtcr: vtcr))
    }

    public func prepare(_ change: P2MPlannedChange) -> Bool { mirror?.prepare(change) ?? true }
    public func apply(_ change: P2MChange) { mirror?.apply(change) }
    /// `apply`, the mirror committing through `commit` (see `Stage1MirrorCommit`).
    public func apply<Commit: Stage1MirrorCommit>(_ change: P2MChange, commit: Commit.Type)
    where Commit.Memory == M, Commit.Sink == MirrorSink<R, M, C, Pool> {
        mirror?.apply(change, commit: commit)
    }

    public func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) {
        if let mirror { mirror.invalidate(vmid: vmid, gfn, count: count) } else {
            stage2.invalidate(vmid: vmid, gfn, count: count)
        }
    }
    public func invalidateAll(vmid: UInt16) {
        if let mirror { mirror.invalidateAll(vmid: vmid) } else { stage2.invalidateAll(vmid: vmid) }
    }
    public var hasPendingInvalidations: Bool { mirror?.hasPendingInvalidations ?? false }
    public func synchronize() throws(IOMMUSyncError) {
        if let mirror { try mirror.synchronize() } else { try stage2.synchronize() }
    }
}

import AArch64
import Translation

/// The IOMMU side of a P2M whose tables the SMMU shares through stage 2: the
/// P2M's flush forwards each invalidated GFN range, which becomes TLBI_S2_IPA
/// ranges (or one per page without RIL, or TLBI_S12_VMALL past the planner's
/// threshold), and its completion wait is the batch's one CMD_SYNC. Pass it as
/// the P2M's `iommu` hook. Its methods are transparent: on the board each has
/// one caller, `SMMUDomainHooks`.
public struct SMMUStage2Invalidator<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>: IOMMUInvalidator {
    public let handle: SMMUHandle<R, M, C>
    @usableFromInline var lastVMID: UInt16?

    public init(handle: SMMUHandle<R, M, C>) { self.handle = handle }

    @_transparent public mutating func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) {
        lastVMID = vmid
        handle.queue(.stage2(vmid: vmid), first: PageNumber(gfn), pages: count)
    }

    @_transparent public mutating func invalidateAll(vmid: UInt16) {
        lastVMID = vmid
        handle.queueAll(.stage2(vmid: vmid))
    }

    @_transparent public mutating func synchronize() throws(IOMMUSyncError) {
        try handle.synchronize(fallback: lastVMID.map { InvalidationScope.stage2(vmid: $0) })
    }
}

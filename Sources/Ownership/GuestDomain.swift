import AArch64
import Translation

/// A guest domain as the ownership layer keeps it: its configuration, its
/// P2M, the xenheap frames the hypervisor shared with it, and the 1:1 IOMMU
/// mappings its grant mappings required (seed 002).
public struct GuestDomain<P2M: GuestPhysmap & ~Copyable>: ~Copyable {
    public internal(set) var config: DomainConfig
    public internal(set) var p2m: P2M
    /// The P2M's write lock (Xen's `p2m->lock`): every edit of `p2m` runs inside
    /// `lock.withLock`, whose token the edit demands.
    let lock = P2MLock()
    /// The shared_info page (XENMAPSPACE_shared_info, index 0).
    public internal(set) var sharedInfo: MFN?
    /// Grant-table frames, shared and status (XENMAPSPACE_grant_table).
    /// Only the frames: where each is mapped is read from the frame's
    /// `type_info` (seed 001), never kept here where it could go stale.
    public internal(set) var grantSharedFrames = [MFN]()
    public internal(set) var grantStatusFrames = [MFN]()
    /// Granted frames mapped 1:1 for the IOMMU, sorted by frame.
    public internal(set) var iommuGrantMappings = [IOMMUGrantMapping]()
    /// What a commit on this domain's P2M could not finish because the IOMMU
    /// did not confirm its invalidation (`P2MFlushError`): ranges to invalidate
    /// again, references and table pages that stay held until then (seed 000).
    /// The domain's next commit takes it over and retries.
    @usableFromInline var owed: OwnershipFlushBatch
    /// The last commit on this P2M the IOMMU did not confirm. Kept per
    /// domain: it is written under this domain's P2M lock, and CPUs commit
    /// on different domains at once.
    public internal(set) var lastFlushFailure: P2MFlushError?

    init(config: DomainConfig, p2m: consuming P2M, owed: consuming OwnershipFlushBatch) {
        self.config = config
        self.p2m = p2m
        self.owed = owed
    }

    /// A flush of this domain's P2M failed and has not been completed since:
    /// some frames stay held and some GFNs may still be cached by the IOMMU.
    /// (Or frames freed by a completed one wait to go back to the host.)
    @_transparent public var owesFlush: Bool { !owed.isEmpty || !owed.releaser.dead.isEmpty }
    /// References kept until the owed flush completes.
    public var referencesHeldForFlush: UInt64 { owed.heldReferences }

    public var id: DomainID { config.id }

    func grantFrame(_ index: Int, status: Bool) -> MFN? {
        let frames = status ? grantStatusFrames : grantSharedFrames
        return index >= 0 && index < frames.count ? frames[index] : nil
    }

    /// Position of `mfn` in `iommuGrantMappings`, or where it would be inserted.
    func iommuMappingSlot(_ mfn: MFN) -> (index: Int, found: Bool) {
        var lo = 0, hi = iommuGrantMappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if iommuGrantMappings[mid].frame < mfn { lo = mid + 1 } else { hi = mid }
        }
        return (lo, lo < iommuGrantMappings.count && iommuGrantMappings[lo].frame == mfn)
    }
}

/// One granted frame's 1:1 IOMMU mapping in a direct-mapped domain: how many
/// grant mappings of the frame exist in the domain, and how many of them are
/// writable (the IOMMU mapping is writable while any is, like Xen's mapkind).
public struct IOMMUGrantMapping: Equatable, Sendable {
    public let frame: MFN
    public internal(set) var mappings: UInt32
    public internal(set) var writableMappings: UInt32
}

import AArch64

// The P2M's hooks: small protocols used as generic parameters (never `any P`), each
// with a no-op type so a simple user (a test, a domain without devices) names none.

/// Takes custody of page references that must outlive a deferred invalidation
/// (seed 000, XSA-346: a page may not be freed or reused while any TLB, CPU or
/// IOMMU, can still translate to it).
///
/// `hold` is called while edits are recorded; `releaseHeld` exactly once per
/// commit, after the CPU invalidation and every attached IOMMU's invalidation have
/// completed. `hold` cannot fail: the implementation owns storage for every
/// reference it may be handed (e.g. a list threaded through the frame table).
public protocol PageReferenceReleaser {
    mutating func hold(_ mfn: MFN, count: UInt64)
    mutating func releaseHeld()
}

/// For callers that never hold references. Holding one through it is a programming
/// error (the reference would leak), so it traps.
public struct NoHeldReferences: PageReferenceReleaser {
    public init() {}
    public mutating func hold(_ mfn: MFN, count: UInt64) {
        preconditionFailure("FlushBatch<NoHeldReferences> cannot hold page references")
    }
    public mutating func releaseHeld() {}
}

/// Told about every leaf mapping that leaves the P2M: Xen's `p2m_put_l3_page`.
/// Called for unmapped pages and blocks, for entries overwritten by a map with a
/// different MFN (Xen's rule), and for everything torn down by `relinquish`.
/// A run is `count` pages at consecutive GFNs and MFNs of one type.
///
/// This is where the page-state layer drops a foreign mapping's reference (after
/// the flush: hand it to `batch.holdReference`) and clears a xenheap page's GFN.
/// The listener must not fail; the P2M has already committed to the removal.
public protocol P2MEntryListener {
    mutating func entryRemoved<R: PageReferenceReleaser>(
        _ gfn: GFN, mfn: MFN, count: UInt64, type: P2MType, batch: inout FlushBatch<R>)
}

public struct NoEntryListener: P2MEntryListener {
    public init() {}
    @inline(__always)
    public mutating func entryRemoved<R: PageReferenceReleaser>(
        _ gfn: GFN, mfn: MFN, count: UInt64, type: P2MType, batch: inout FlushBatch<R>) {}
}

/// One change in the P2M's change stream, as seen by a stage-1 IOMMU mirror.
public enum P2MChange: Equatable, Sendable {
    /// `count` pages at `gfn` now map `mfn`... with `type` (replacing whatever was there).
    case mapped(GFN, MFN, count: UInt64, type: P2MType, access: P2MAccess)
    /// Nothing is mapped at `count` pages from `gfn` any more (holes included).
    case unmapped(GFN, count: UInt64)
    /// The run at `gfn` → `mfn` changed type; output addresses unchanged.
    case typeChanged(GFN, MFN, count: UInt64, from: P2MType, to: P2MType)
}

/// Follows the P2M's change stream (the SMMU stage-1 mirror of SMMUs without stage 2).
///
/// Two phases, like the P2M itself: `prepare` is asked, before the P2M writes
/// anything, whether every change inside [gfn, gfn+count) can be applied without
/// failure (reserve table pages there); `apply` is then called, after the P2M's own
/// edits, and must not fail. Refusing in `prepare` fails the whole operation with
/// `P2MError.observerRefused` and no change anywhere.
public protocol P2MChangeObserver {
    mutating func prepare(_ gfn: GFN, count: UInt64) -> Bool
    mutating func apply(_ change: P2MChange)
}

public struct NoChangeObserver: P2MChangeObserver {
    public init() {}
    @inline(__always) public mutating func prepare(_ gfn: GFN, count: UInt64) -> Bool { true }
    @inline(__always) public mutating func apply(_ change: P2MChange) {}
}

/// Where a flush forwards the IPA ranges it invalidates on the CPU: every IOMMU
/// that shares this P2M (SMMU stage 2: TLBI_S2_IPA / TLBI_S12_VMALL) or mirrors it
/// (stage 1: TLBI_NH_VA by IOVA = IPA), followed by a completion wait (CMD_SYNC).
public protocol IOMMUInvalidator {
    mutating func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64)
    mutating func invalidateAll(vmid: UInt16)
    /// Return only when every invalidation issued so far has completed.
    mutating func synchronize()
}

public struct NoIOMMU: IOMMUInvalidator {
    public init() {}
    @inline(__always) public mutating func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) {}
    @inline(__always) public mutating func invalidateAll(vmid: UInt16) {}
    @inline(__always) public mutating func synchronize() {}
}

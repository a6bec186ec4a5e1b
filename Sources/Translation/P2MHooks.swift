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
    /// Take custody of everything `other` holds, leaving it holding nothing
    /// (`FlushBatch.absorb`). The default serves releasers that are never merged
    /// while holding references.
    mutating func takeHeld(from other: inout Self)
}

extension PageReferenceReleaser {
    public mutating func takeHeld(from other: inout Self) {
        preconditionFailure("this PageReferenceReleaser cannot take over held references")
    }
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
    /// `count` pages at `gfn` now map `mfn`... with `type` under `access` (replacing
    /// whatever was there).
    case mapped(GFN, MFN, count: UInt64, type: P2MType, access: P2MAccess)
    /// Nothing is mapped at `count` pages from `gfn` any more (holes included).
    case unmapped(GFN, count: UInt64)
    /// The run at `gfn` → `mfn` changed type; output addresses unchanged. `access`
    /// is the restriction the new entries carry (the same one `P2M.changeType` was
    /// given): a mirror must apply it on top of `to`, or a read-only restriction
    /// would become a writable IOMMU mapping.
    case typeChanged(GFN, MFN, count: UInt64, from: P2MType, to: P2MType, access: P2MAccess)
}

/// What a P2M operation is about to do, as told to `P2MChangeObserver.prepare`
/// before anything is written, so an observer can reserve exactly what the
/// change needs (a 1 GiB map is one block in a mirror too, not 513 table pages).
public enum P2MPlannedChange: Equatable, Sendable {
    /// `map`: `count` pages from `gfn` will map consecutive frames from `mfn` as
    /// `type` under `access`, replacing what is there if `replacing`.
    case map(GFN, MFN, count: UInt64, type: P2MType, access: P2MAccess, replacing: Bool)
    /// `unmap`: everything in [gfn, gfn+count) goes (holes included).
    case unmap(GFN, count: UInt64)
    /// `changeType`: entries of type `from` in [gfn, gfn+count) become `to` under
    /// `access`; output addresses and leaf sizes stay, runs may end inside a block.
    case changeType(GFN, count: UInt64, from: P2MType, to: P2MType, access: P2MAccess)

    /// The input range the change may touch.
    public var range: (gfn: GFN, count: UInt64) {
        switch self {
        case .map(let gfn, _, let count, _, _, _): (gfn, count)
        case .unmap(let gfn, let count): (gfn, count)
        case .changeType(let gfn, let count, _, _, _): (gfn, count)
        }
    }
}

/// Follows the P2M's change stream (the SMMU stage-1 mirror of SMMUs without stage 2).
///
/// Two phases, like the P2M itself: `prepare` is told, before the P2M writes
/// anything, which change is coming, and answers whether every change it implies
/// can be applied without failure (reserving what that needs, e.g. table pages);
/// `apply` is then called, after the P2M's own edits, one or more times with the
/// changes that happened, and must not fail. Refusing in `prepare` fails the whole
/// operation with `P2MError.observerRefused` and no change anywhere.
public protocol P2MChangeObserver {
    mutating func prepare(_ change: P2MPlannedChange) -> Bool
    mutating func apply(_ change: P2MChange)
}

public struct NoChangeObserver: P2MChangeObserver {
    public init() {}
    @inline(__always) public mutating func prepare(_ change: P2MPlannedChange) -> Bool { true }
    @inline(__always) public mutating func apply(_ change: P2MChange) {}
}

/// Why an IOMMU could not confirm that the invalidations issued since its last
/// successful `synchronize` have completed. While that is so it may still
/// translate through the old entries, so nothing they pointed to may be reused
/// (DESIGN.md rule 1, seed 000).
public enum IOMMUSyncError: Error, Equatable, Sendable {
    /// The completion wait gave up (SMMU: CMD_SYNC not consumed in the poll budget).
    case completionTimeout
    /// An invalidation could not even be issued (SMMU: the command queue stayed full).
    case invalidationNotIssued
    /// The IOMMU refused an invalidation and no fallback completed in its place.
    case invalidationRejected
}

/// Where a flush forwards the IPA ranges it invalidates on the CPU: every IOMMU
/// that shares this P2M (SMMU stage 2: TLBI_S2_IPA / TLBI_S12_VMALL) or mirrors it
/// (stage 1: TLBI_NH_VA by IOVA = IPA), followed by a completion wait (CMD_SYNC).
public protocol IOMMUInvalidator {
    mutating func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64)
    mutating func invalidateAll(vmid: UInt16)
    /// Return only when every invalidation issued since the last successful
    /// `synchronize` has completed; throw if that cannot be confirmed. After a
    /// throw the P2M issues the same invalidations again before the next wait, so
    /// an implementation may forget what it queued (but must keep anything of its
    /// own, such as a mirror's unlinked table pages, until a wait succeeds).
    mutating func synchronize() throws(IOMMUSyncError)
    /// Whether this IOMMU owes invalidations of its own that no P2M range covers
    /// (a mirror's break-before-make whose wait failed, table pages it unlinked):
    /// `commit` then waits through `synchronize` even for a batch without ranges,
    /// so it never releases while such a wait is outstanding. Defaults to false.
    var hasPendingInvalidations: Bool { get }
}

extension IOMMUInvalidator {
    public var hasPendingInvalidations: Bool { false }
}

public struct NoIOMMU: IOMMUInvalidator {
    public init() {}
    @inline(__always) public mutating func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) {}
    @inline(__always) public mutating func invalidateAll(vmid: UInt16) {}
    @inline(__always) public mutating func synchronize() throws(IOMMUSyncError) {}
}

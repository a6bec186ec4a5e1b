import AArch64
import Translation

/// What happens to a frame when its P2M entry goes away: Xen's
/// `p2m_put_l3_page`, called by the P2M for every leaf it removes or
/// overwrites, under the P2M lock.
///
/// - A foreign or grant mapping holds a reference on the frame; it is handed
///   to the batch, so it is dropped only after the flush (DESIGN.md rule 1).
/// - A xenheap frame mapped as RAM gets its stored GFN cleared (seed 001):
///   the next `addToPhysmap` of it succeeds, and nothing ever unmaps a stale
///   GFN that now holds an unrelated page. The GFN is compared first so that
///   a removal at another GFN (not possible while the invariant holds) can
///   never clear a valid one.
public struct FrameEntryListener: P2MEntryListener {
    /// nil for a P2M without a frame table (`init()`).
    @usableFromInline let frames: FrameTable?

    public init(frames: FrameTable) {
        self.frames = frames
    }

    /// For a P2M without a frame table (the board's device and host stage-2
    /// P2Ms share the ownership P2M's type): a removed RAM entry has no frame
    /// state to update, and a foreign or grant entry's reference goes to the
    /// batch, whose releaser traps if it has no frame table either.
    public init() {
        self.frames = nil
    }

    @_transparent public mutating func entryRemoved<R: PageReferenceReleaser>(
        _ gfn: GFN, mfn: MFN, count: UInt64, type: P2MType, batch: inout FlushBatch<R>
    ) {
        switch type {
        case .mapForeignRW, .mapForeignRO, .grantMapRW, .grantMapRO:
            batch.holdReference(mfn, count: count)
        case .ramRW, .ramRO:
            guard let frames else { return }
            for i in 0..<count {
                guard let index = frames.index(of: mfn.adding(i)) else { continue }
                guard frames.state(at: index).isXenheap else { continue }
                let removedGFN = gfn.adding(i)
                frames.updateTypeInfo(at: index) { (t: TypeInfo) -> TypeInfo in
                    guard t.xenheapGFN == removedGFN else { return t }
                    var n = t
                    n.xenheapGFN = nil
                    return n
                }
            }
        case .invalid, .mmioDirectDevice, .mmioDirectNC, .mmioDirectCacheable, .iommuMapRW, .iommuMapRO:
            break
        }
    }
}

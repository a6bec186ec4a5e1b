import AArch64
import Translation

/// XENMAPSPACE_gmfn_range in progress (seed 000, XSA-346).
///
/// Moving a frame from GFN `idx` to GFN `gfn` unmaps it at `idx`; the flush
/// for the old GFNs is deferred and done once per chunk. Until that flush has
/// completed, a TLB (CPU or IOMMU) may still translate `idx` to the frame, so
/// the move holds a reference on every frame it moved, in the chunk's batch,
/// and the batch's commit drops them only after the invalidation completed.
/// A parallel `reclaim` of the frame at its new GFN then cannot free it: the
/// frame goes back to the host when the chunk's flush is done, not before.
///
/// A chunk is at most `chunkFrames` (16, Xen's `pages[16]`) frames; after
/// each chunk the call returns a continuation, as Xen preempts, so the
/// references held never grow beyond one chunk.
public struct GmfnRangeMove: ~Copyable {
    public static var chunkFrames: Int { 16 }

    public let domain: DomainID
    /// The next frame to move, and where it goes.
    public private(set) var idx: GFN
    public private(set) var gfn: GFN
    public private(set) var remaining: UInt64
    /// Frames moved by this chunk so far.
    public private(set) var moved: UInt64 = 0
    var batch: OwnershipFlushBatch
    /// The batch of each frame's own edits (the destination's map, a displaced
    /// frame's reference), committed before that frame's move returns and so
    /// empty between frames: one batch reused, not one built per frame.
    var now: OwnershipFlushBatch

    init(domain: DomainID, idx: GFN, gfn: GFN, size: UInt64, batch: consuming OwnershipFlushBatch,
         now: consuming OwnershipFlushBatch) {
        self.domain = domain
        self.idx = idx
        self.gfn = gfn
        self.remaining = size
        self.batch = batch
        self.now = now
    }

    /// References this chunk holds until its flush.
    public var heldReferences: UInt64 { batch.heldReferences }

    mutating func advance() {
        idx = idx.adding(1)
        gfn = gfn.adding(1)
        remaining -= 1
        moved += 1
    }
}

extension PageOwnership where P2M: ~Copyable {
    /// Starts moving `size` frames of `domain` from GFN `idx` to GFN `gfn`.
    public func beginGmfnRange(_ domain: DomainID, idx: GFN, gfn: GFN, size: UInt64) throws(OwnershipError) -> GmfnRangeMove {
        _ = try domainIndex(domain)
        guard size > 0 else { throw .EINVAL(.rangeEmpty) }
        return GmfnRangeMove(domain: domain, idx: idx, gfn: gfn, size: size, batch: newBatch(), now: newBatch())
    }

    /// Moves the next frame of the chunk; false when the chunk is full or the
    /// range is done. Each frame moves completely or not at all (but see
    /// `EBUSY(.iommuNotConfirmed)` below: its destination's occupant is freed).
    ///
    /// If something is mapped at the destination it must be the domain's own
    /// RAM; it is displaced and freed (Xen's `guest_remove_page` inside
    /// `xenmem_add_to_physmap_one`). That removal frees a frame, so its flush
    /// is never deferred (XSA-346 part 1): the replacement invalidates the old
    /// translation before it returns, and the displaced frame's reference goes
    /// through a batch committed at once, not through the chunk's.
    public mutating func moveNextFrame(_ move: inout GmfnRangeMove) throws(OwnershipError) -> Bool {
        guard move.remaining > 0, move.moved < UInt64(GmfnRangeMove.chunkFrames) else { return false }
        let domain = move.domain
        let di = try domainIndex(domain)
        let source = move.idx, destination = move.gfn
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Bool in
            guard let entry = domains[di].p2m.translate(source) else { throw .ENOENT(.unmapped(domain, source)) }
            let index = try requireOwnRAM(domain, source, entry)
            if source == destination {
                move.advance()
                return true
            }
            var displacedIndex: Int? = nil
            var displacedFrame = MFN(raw: 0)
            if let occupant = domains[di].p2m.translate(destination) {
                guard let i = try? requireOwnRAM(domain, destination, occupant),
                      frames.state(at: i).hostState == .noPage else {
                    throw .EBUSY(.gfnOccupied(domain, destination))
                }
                displacedIndex = i
                displacedFrame = occupant.mfn
            }
            // Checks are done; from here only the P2M edit of the destination can fail.
            try takeReference(index, entry.mfn)
            do throws(OwnershipError) {
                if displacedIndex != nil {
                    try domains[di].p2m.replace(destination, with: entry.mfn, as: entry.type, flushing: &move.now,
                                                holding: held)
                } else {
                    try domains[di].p2m.map(destination, to: entry.mfn, as: entry.type, flushing: &move.now,
                                            holding: held)
                }
            } catch {
                dropReferenceTaken(index)
                if error == .EBUSY(.iommuNotConfirmed(destination)), let di2 = displacedIndex {
                    // The one failure that changes state (`P2MError.breakNotConfirmed`):
                    // the replacement broke the destination's entry, and the IOMMU
                    // did not confirm its invalidation, so the new entry was not
                    // made and the old one cannot be put back. The displaced frame
                    // has left the P2M as the move would have removed it: it is
                    // freed the same way (reference through the flush). The source
                    // frame did not move; retrying the move after a successful
                    // flush finishes it into the now free destination.
                    frames.updateState(at: di2) { (s: FrameState) -> FrameState in
                        var n = s
                        n.isAllocated = false
                        return n
                    }
                    move.now.holdReference(displacedFrame)
                }
                commit(&move.now, domain: di, holding: held, locks: &locks)
                throw error
            }
            do {
                try domains[di].p2m.unmap(source, flushing: &move.batch, holding: held)
            } catch {
                preconditionFailure("unmapping a 4 KiB leaf needs no table page")
            }
            move.batch.holdReference(entry.mfn)
            if let di2 = displacedIndex {
                frames.updateState(at: di2) { (s: FrameState) -> FrameState in
                    var n = s
                    n.isAllocated = false
                    return n
                }
                move.now.holdReference(displacedFrame)
            }
            // A map into a free slot usually records nothing (no invalidation,
            // table page or reference): then there is nothing to commit, and an
            // IOMMU wait owed from before is the chunk's commit's to retry.
            if !move.now.isEmpty || !move.now.releaser.dead.isEmpty {
                commit(&move.now, domain: di, holding: held, locks: &locks)
            }
            move.advance()
            return true
        }
    }

    /// Flushes the chunk's old GFNs (CPU and IOMMU, waited for), then drops
    /// the references the chunk held; frames nobody else holds go back to the
    /// host only now. Returns whether the range is complete.
    public mutating func finishChunk(_ move: consuming GmfnRangeMove) -> PhysmapProgress {
        var batch = move.batch
        // Committed at the end of every frame's move, so nothing is owed here.
        let now = move.now
        precondition(now.isEmpty && now.releaser.dead.isEmpty, "a frame's own batch left uncommitted")
        let done = move.moved, remaining = move.remaining
        guard let di = try? domainIndex(move.domain) else {
            preconditionFailure("a range move outlived its domain")
        }
        var locks = lockSet()
        locks.acquire(.p2m)
        let lockedDomain = domains + di
        lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) in commit(&batch, domain: di, holding: held, locks: &locks) }
        locks.release(.p2m)
        return remaining == 0 ? .complete : .continuation(done: done)
    }

    /// One invocation of add_to_physmap for `.gmfn`/`.gmfnRange`: one chunk.
    /// A failure before any frame moved throws with nothing changed; a failure
    /// after some moved returns their continuation, and the caller's retry,
    /// starting at the failing frame, gets the error with nothing changed.
    /// The exception is `EBUSY(.iommuNotConfirmed)`: the failing frame's
    /// destination lost its occupant, which was freed (see `moveNextFrame`).
    mutating func moveRange(_ domain: DomainID, idx: GFN, gfn: GFN, size: UInt64) throws(OwnershipError) -> PhysmapProgress {
        var move = try beginGmfnRange(domain, idx: idx, gfn: gfn, size: size)
        var failure: OwnershipError? = nil
        while true {
            do {
                guard try moveNextFrame(&move) else { break }
            } catch {
                failure = error
                break
            }
        }
        let movedAny = move.moved > 0
        let progress = finishChunk(move)
        if let failure, !movedAny { throw failure }
        return progress
    }
}

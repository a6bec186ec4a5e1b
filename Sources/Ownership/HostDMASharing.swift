import AArch64
import Translation

/// Host DMA sharing (seed 004, `__pkvm_host_share_dma`/`__pkvm_host_unshare_dma`).
///
/// Host frames mapped in the SMMU must never reach a guest or the hypervisor,
/// or the host could read them back by DMA. The first share moves the frame
/// `owned → sharedOwned` with the IOMMU as completer; every share adds one to
/// the frame's 16-bit DMA share count; a frame with a non-zero count cannot be
/// donated or shared elsewhere, and a frame donated or lent elsewhere cannot
/// be shared for DMA.
extension PageOwnership where P2M: ~Copyable {
    /// Marks `[pa, pa+bytes)` as shared with the IOMMU.
    ///
    /// `isRAM` is the host's claim; it is checked against the memory map, not
    /// trusted (seed 004: "`is_ram` is only a hint provided by the host"). A
    /// non-RAM range is accepted, without a count and without a per-frame
    /// walk, only when it lies inside one region the platform declared as a
    /// host device's (`declareHostDevice`): anything else (another device's
    /// MMIO, the SMMU's own registers, a hole) is refused. A RAM range is
    /// walked frame by frame and stops at the first frame that is not RAM, so
    /// the walk is bounded by the RAM the frame table covers. A failure at any
    /// frame rolls every earlier frame of the call back, so a throw leaves the
    /// table exactly as it was.
    public mutating func hostShareDMA(_ pa: PhysAddr, bytes: UInt64, isRAM: Bool) throws(OwnershipError) {
        let count = try Self.pageCount(pa, bytes: bytes)
        guard isRAM else {
            try Self.requireHostDevice(pa.frame, count: count, frames: frames, regions: hostDeviceRegions)
            return
        }
        // The page lock taken and released straight-line: a `withPages`
        // closure was a closure and its forwarder on the board.
        var locks = lockSet()
        let pages = locks.acquirePages()
        let nonCoherent = Self.anyNonCoherent(hostDMADomains)
        var done: UInt64 = 0
        do throws(OwnershipError) {
            while done < count {
                try shareOneForDMA(pa.frame.adding(done), nonCoherent: nonCoherent, holding: pages)
                done += 1
            }
        } catch {
            while done > 0 {
                done -= 1
                dropOneDMAShare(pa.frame.adding(done), holding: pages)
            }
            locks.releasePages(pages)
            throw error
        }
        // Seed 003: before a frame first becomes reachable by a device that does
        // not snoop the caches, clean+invalidate it. `shareOneForDMA` marked the
        // first shares while a non-coherent DMA domain is attached; the IOMMU
        // mapping is made by the caller after this returns, so the frames are
        // clean before any device can reach them. Without a non-coherent domain
        // no first share was marked (the mark is `nonCoherent`), so none needs it.
        if nonCoherent { cleanMarkedFrames(pa.frame, count: count, shares: 1, holding: pages) }
        locks.releasePages(pages)
    }

    /// Drops one DMA share of every frame of `[pa, pa+bytes)`: the exact
    /// inverse of `hostShareDMA`. Each frame's share is checked and dropped in
    /// one compare-exchange, so two unshares of a frame shared once cannot
    /// both pass the check; a host that unshares what it never shared gets an
    /// error, and the frames of the call already unshared are shared again.
    public mutating func hostUnshareDMA(_ pa: PhysAddr, bytes: UInt64) throws(OwnershipError) {
        let count = try Self.pageCount(pa, bytes: bytes)
        // A declared host device was never counted: nothing to drop.
        if Self.isHostDevice(pa.frame, count: count, in: hostDeviceRegions) { return }
        var locks = lockSet()
        let pages = locks.acquirePages()  // straight-line, as in hostShareDMA
        // Stops at the first frame that is not RAM: bounded by the frame table.
        var done: UInt64 = 0
        var marked = false
        do throws(OwnershipError) {
            while done < count {
                if try unshareOneForDMA(pa.frame.adding(done)) { marked = true }
                done += 1
            }
        } catch {
            while done > 0 {
                done -= 1
                restoreOneDMAShare(pa.frame.adding(done), holding: pages)
            }
            locks.releasePages(pages)
            throw error
        }
        // Seed 003, lazily: a frame leaving DMA after a non-coherent device
        // could reach it is cleaned before it goes back to the host alone.
        // Its last unshare kept the mark; the walk that cleans it clears it.
        // Nothing can hand the frame on before the clean and its
        // synchronisation are done: that takes the page lock we hold.
        if marked { cleanMarkedFrames(pa.frame, count: count, shares: 0, clearingMark: true, holding: pages) }
        locks.releasePages(pages)
    }

    // MARK: one frame

    /// One more share of `mfn`; a first share is marked `cacheFlushRequired`
    /// exactly when `nonCoherent` (a non-coherent host DMA domain is attached).
    @inline(__always)
    mutating func shareOneForDMA(_ mfn: MFN, nonCoherent: Bool,
                                 holding pages: borrowing PageStateLockHeld) throws(OwnershipError) {
        guard let index = frames.index(of: mfn) else { throw .EINVAL(.notRAM(mfn.address)) }
        try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
            var n = s
            if s.dmaShares == 0 {
                try FrameState.requireExclusivelyHostOwned(mfn, s)
                n.hostState = .sharedOwned
                n.borrower = .iommu
                n.cacheFlushRequired = nonCoherent
            } else {
                // Already counted: it must still be the IOMMU's share, not a
                // page the host also lent to the hypervisor (seed 004,
                // `__host_check_page_dma_shared`).
                guard s.hostState == .sharedOwned else { throw .EPERM(.wrongHostState(mfn, s.hostState)) }
                guard s.isBorrowed(by: .iommu) else { throw .EPERM(.borrowedBy(mfn, s.borrower)) }
                guard s.dmaShares < FrameState.maxDMAShares else { throw .EOVERFLOW(.dmaShareCount(mfn)) }
            }
            n.dmaShares = s.dmaShares + 1
            return n
        }
    }

    /// Inverse of one successful `shareOneForDMA`: the last share restores
    /// `owned`, no borrower and a cleared flag (a rollback within the same call
    /// gets back the exact word it had). That is one unshare step, and the
    /// mark it keeps cleared: one copy of the unshare step serves both (a drop
    /// step of its own was its own closure on the board). Device memory has
    /// no entry and was never counted.
    mutating func dropOneDMAShare(_ mfn: MFN, holding pages: borrowing PageStateLockHeld) {
        guard let index = frames.index(of: mfn) else { return }
        do {
            guard try unshareOneForDMA(mfn) else { return }
        } catch {
            preconditionFailure("rolling back a DMA share that is not there")
        }
        frames.updateState(at: index) { (s: FrameState) -> FrameState in
            var n = s
            n.cacheFlushRequired = false
            return n
        }
    }

    /// One DMA share fewer on `mfn`, checked on the word the exchange
    /// replaces. The last share gives the frame back to the host alone but
    /// keeps its cache mark: `hostUnshareDMA` cleans it and clears the mark.
    /// Returns whether this was the last share of a marked frame.
    /// It takes no page lock token: one frame's check and update are one
    /// compare-exchange, correct without the lock (ConcurrencyStressTests
    /// runs it unlocked); the lock is for `hostUnshareDMA`'s rollback.
    @discardableResult @inline(__always)
    mutating func unshareOneForDMA(_ mfn: MFN) throws(OwnershipError) -> Bool {
        guard let index = frames.index(of: mfn) else { throw .ENOENT(.notDMAShared(mfn)) }
        let (_, now) = try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
            guard s.dmaShares > 0, s.isBorrowed(by: .iommu), s.hostState == .sharedOwned else {
                throw .ENOENT(.notDMAShared(mfn))
            }
            var n = s
            n.dmaShares -= 1
            if n.dmaShares == 0 {
                n.hostState = .owned
                n.borrower = .none
            }
            return n
        }
        return now.dmaShares == 0 && now.cacheFlushRequired
    }

    /// Undoes one `unshareOneForDMA` of the same call (under the page lock
    /// it still holds, so the frame is as that call left it): the exact word
    /// from before comes back. That is one more share with the frame's own
    /// mark: the unshare kept the mark, and only holders of the page lock set
    /// or clear it. One copy of the share step serves both (a restore step
    /// of its own was its own closure on the board).
    mutating func restoreOneDMAShare(_ mfn: MFN, holding pages: borrowing PageStateLockHeld) {
        guard let index = frames.index(of: mfn) else { return }
        do {
            try shareOneForDMA(mfn, nonCoherent: frames.state(at: index).cacheFlushRequired, holding: pages)
        } catch {
            preconditionFailure("restoring a DMA share the frame no longer admits")
        }
    }

    /// Page count of an aligned, non-empty, non-wrapping range.
    @inline(__always)
    static func pageCount(_ pa: PhysAddr, bytes: UInt64) throws(OwnershipError) -> UInt64 {
        guard pa.isPageAligned else { throw .EINVAL(.misaligned(pa)) }
        guard bytes & PageSize.offsetMask4K == 0 else { throw .EINVAL(.sizeMisaligned(bytes)) }
        guard bytes != 0 else { throw .EINVAL(.rangeEmpty) }
        guard !pa.raw.addingReportingOverflow(bytes).overflow else {
            throw .EINVAL(.rangeWraps(pa, bytes: bytes))
        }
        return bytes >> PageSize.shift4K
    }

    /// Cleans the frames of `[first, first+count)` that carry the cache mark
    /// with exactly `shares` DMA shares, one maintenance call per contiguous
    /// run and one synchronisation after them.
    /// A share cleans with 1 (the frames this share made reachable by a
    /// non-coherent domain for the first time), an unshare with 0 and
    /// `clearingMark` (frames whose last share such a device could reach lose
    /// the mark in the same walk: the caller holds the page lock until this
    /// returns, and nobody hands a frame on without it). One routine for both.
    mutating func cleanMarkedFrames(_ first: MFN, count: UInt64, shares: UInt16, clearingMark: Bool = false,
                                    holding pages: borrowing PageStateLockHeld) {
        var runStart: UInt64? = nil
        var any = false
        for i in 0...count {
            var needs = false
            if i < count, let index = frames.index(of: first.adding(i)) {
                let s = frames.state(at: index)
                needs = s.dmaShares == shares && s.cacheFlushRequired
                if needs && clearingMark {
                    frames.updateState(at: index) { (s: FrameState) -> FrameState in
                        var n = s
                        n.cacheFlushRequired = false
                        return n
                    }
                }
            }
            if needs {
                if runStart == nil { runStart = i }
            } else if let start = runStart {
                cache.cleanAndInvalidate(first.adding(start).address, bytes: (i - start) << PageSize.shift4K)
                runStart = nil
                any = true
            }
        }
        if any { cache.synchronize() }
    }
}

// On `FrameState`, not the generic `PageOwnership`: one copy in the image
// instead of one per PageOwnership specialisation.
extension FrameState {
    /// pKVM's "the page is owned by the host and nobody borrows it".
    @inline(__always)
    static func requireExclusivelyHostOwned(_ mfn: MFN, _ s: FrameState) throws(OwnershipError) {
        // The five conditions below at once, in one masked compare of the word.
        if s.isExclusivelyHostOwned { return }
        try refuseNotExclusivelyHostOwned(mfn, s)
    }

    /// The error `requireExclusivelyHostOwned` throws, for a frame that fails it.
    @_transparent static func refuseNotExclusivelyHostOwned(_ mfn: MFN, _ s: FrameState) throws(OwnershipError) {
        guard s.isOwned(by: .host) else { throw .EPERM(.notOwner(mfn, owner: s.owner)) }
        guard s.dmaShares == 0 else { throw .EPERM(.dmaShared(mfn, shares: s.dmaShares)) }
        guard s.isBorrowed(by: .none) else { throw .EPERM(.borrowedBy(mfn, s.borrower)) }
        guard s.hostState == .owned else { throw .EPERM(.wrongHostState(mfn, s.hostState)) }
        // A host frame carries references only while an unmap of it from a
        // guest waits for an IOMMU flush that has not completed.
        guard s.references == 0 else { throw .EBUSY(.flushPending(mfn)) }
        preconditionFailure("isExclusivelyHostOwned disagrees with its conditions")
    }
}

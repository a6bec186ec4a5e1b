import AArch64
import Translation

/// Non-coherent DMA (seed 003, vfio "Flush CPU caches on DMA pages in
/// non-coherent domains").
///
/// A device that does not snoop the CPU caches reads memory, not the cache:
/// without maintenance it sees stale data the host wrote before a clean
/// (information leak), and after it is gone the CPU may read stale lines over
/// what the device wrote. So a frame is cleaned and invalidated
/// - before it first becomes reachable by a non-coherent domain, and
/// - lazily, when it stops being pinned (unshared, freed, returned) after it
///   was reachable by one, not at each unmap: there are many unmap paths and
///   one release path, and the lazy flush needs no record of which IOVA held
///   which frame.
/// `FrameState.cacheFlushRequired` is the per-frame "was reachable" mark.
extension PageOwnership where P2M: ~Copyable {
    /// Whether any attached host DMA domain does not snoop.
    public var hostHasNonCoherentDMADomain: Bool { Self.anyNonCoherent(hostDMADomains) }

    /// Static over the list: read from a `mutating` operation (`hostShareDMA`),
    /// the property on `self` copied the whole PageOwnership on the board.
    static func anyNonCoherent(_ domains: [DMADomain]) -> Bool {
        // By index: no IndexingIterator specialisation for the list on the board.
        for i in 0..<domains.count where !domains[i].enforcesCacheCoherency { return true }
        return false
    }

    /// Attaches a host device address space. Every frame the host already
    /// shares for DMA becomes reachable through it at once (vfio's replay), so
    /// a non-coherent domain first gets every such frame not yet marked cleaned.
    public mutating func attachHostDMADomain(_ domain: DMADomain) throws(OwnershipError) {
        for i in 0..<hostDMADomains.count where hostDMADomains[i].id == domain.id {
            throw .EEXIST(.dmaDomainAttached(domain.id))
        }
        var locks = lockSet()
        let pages = locks.acquirePages()
        if !domain.enforcesCacheCoherency {
            cleanBeforeNonCoherentReach(holding: pages) { (s: FrameState) -> Bool in s.dmaShares > 0 }
        }
        hostDMADomains.append(domain)
        locks.releasePages(pages)
    }

    /// Detaches a host device address space (hot-unplug). No maintenance here:
    /// frames it could reach keep their mark and are cleaned when unshared.
    public mutating func detachHostDMADomain(id: UInt16) throws(OwnershipError) {
        for i in hostDMADomains.indices where hostDMADomains[i].id == id {
            hostDMADomains.remove(at: i)
            return
        }
        throw .EINVAL(.dmaDomainUnknown(id))
    }

    /// Every frame `reachable` selects is about to become reachable by a
    /// non-coherent domain at once (vfio's replay): clean and mark each one not
    /// yet marked, then one DSB for them all. The caller holds the domain page lock.
    mutating func cleanBeforeNonCoherentReach(holding pages: borrowing PageStateLockHeld,
                                              _ reachable: (FrameState) -> Bool) {
        var flushed = false
        for index in 0..<frames.frameCount {
            let s = frames.state(at: index)
            guard reachable(s), !s.cacheFlushRequired else { continue }
            cache.cleanAndInvalidate(frames.frame(at: index).address, bytes: PageSize.bytes4K)
            frames.updateState(at: index) { (s: FrameState) -> FrameState in
                var n = s
                n.cacheFlushRequired = true
                return n
            }
            flushed = true
        }
        if flushed { cache.synchronize() }
    }

    /// A frame is about to become reachable by a non-coherent domain: clean it
    /// unless it already is marked (then it was cleaned before it first became
    /// reachable and stays so until released). Returns the state to store.
    @_transparent mutating func cleanBeforeNonCoherentMapping(_ mfn: MFN, _ s: FrameState) -> FrameState {
        guard !s.cacheFlushRequired else { return s }
        cache.cleanAndInvalidate(mfn.address, bytes: PageSize.bytes4K)
        cache.synchronize()
        var n = s
        n.cacheFlushRequired = true
        return n
    }

    /// A frame the host or the hypervisor wrote is about to become a guest's,
    /// and the guest may read it with its caches off: clean and invalidate it
    /// to PoC unless stage 2 forces write-back (`GuestFrameCoherence`).
    /// Returns whether it was cleaned.
    @discardableResult
    @_transparent mutating func cleanBeforeGuestMapping(_ mfn: MFN) -> Bool {
        guestFrameCoherence.prepareForGuest(mfn, cache: &cache)
    }

    /// A frame is being released from its last pin: clean it if a non-coherent
    /// domain could reach it. Returns the state to store.
    @_transparent mutating func cleanOnRelease(_ mfn: MFN, _ s: FrameState) -> FrameState {
        guard s.cacheFlushRequired else { return s }
        cache.cleanAndInvalidate(mfn.address, bytes: PageSize.bytes4K)
        cache.synchronize()
        var n = s
        n.cacheFlushRequired = false
        return n
    }
}

import AArch64
import Translation

/// The page-state authority: the frame table, the guest domains with their
/// P2Ms, the host's DMA domains, and the cache maintenance non-coherent
/// devices require.
///
/// Every operation either completes or throws with the frame table, every
/// domain and every P2M exactly as they were (DESIGN.md rule 7): it checks
/// everything that can fail before it writes, and where a P2M edit can still
/// fail (no table page), it edits the P2M before the frame state.
///
/// CPUs run the page-state operations on one `PageOwnership` at once: each
/// takes the locks it needs itself (LockOrder.swift), and what they write
/// outside those locks is a frame entry word, by compare-exchange. The
/// configuration (`createDomain`, `attachHostDMADomain`, `declareHostDevice`)
/// is set up before the table is shared and is only read afterwards.
public struct PageOwnership<Cache: CacheMaintenance, P2M: GuestPhysmap & ~Copyable>: ~Copyable {
    let storage: FrameTableStorage
    /// Clean+invalidate to the point of coherency (seed 003); on the host a recording fake.
    public var cache: Cache
    /// Whether frames must be cleaned before a guest may see them (it may run
    /// with its caches off): yes unless stage 2 forces write-back (FEAT_S2FWB in
    /// use). Set from the HCR_EL2 value guests run with; the default is no FWB.
    public var guestFrameCoherence = GuestFrameCoherence(hcr: 0)
    /// The domain page lock (LockOrder.swift). Every operation binds its own
    /// `LockSet` to it (`lockSet()`), so operations on different CPUs exclude
    /// each other where they move frames between owners.
    let pageLock = PageStateLock.allocate()
    /// The host's device address spaces (seed 003: vfio's domains of one
    /// container). Every host DMA share is reachable from all of them.
    public internal(set) var hostDMADomains = [DMADomain]()
    /// MMIO the platform says belongs to devices the host owns: the only
    /// non-RAM ranges a host DMA share may name (HostDeviceRegions.swift).
    public internal(set) var hostDeviceRegions = [HostDeviceRegion]()
    let domains: UnsafeMutablePointer<GuestDomain<P2M>>
    public let maxDomains: Int
    public private(set) var domainCount = 0

    public init(banks: [MemoryBank], maxDomains: Int = 8, cache: Cache) throws(OwnershipError) {
        storage = try FrameTableStorage(banks: banks)
        self.cache = cache
        self.maxDomains = maxDomains
        domains = UnsafeMutablePointer<GuestDomain<P2M>>.allocate(capacity: max(maxDomains, 1))
    }

    /// The same, with the frame table's entries placed in `frameTableMemory`
    /// (`FrameTableStorage.bytesNeeded(for: banks)` bytes, outliving `self`).
    public init(banks: [MemoryBank], placingFrameTableAt frameTableMemory: UnsafeMutableRawPointer,
                maxDomains: Int = 8, cache: Cache) throws(OwnershipError) {
        // FrameTableStorage(banks:placingEntriesAt:), its table built here.
        storage = FrameTableStorage(table: try FrameTable(banks: banks, placement: frameTableMemory), ownsEntries: false)
        self.cache = cache
        self.maxDomains = maxDomains
        domains = UnsafeMutablePointer<GuestDomain<P2M>>.allocate(capacity: max(maxDomains, 1))
    }

    deinit {
        domains.deinitialize(count: domainCount)
        domains.deallocate()
        pageLock.deallocate()
    }

    /// A new, empty lock set for one operation, bound to this table's page lock.
    func lockSet() -> LockSet { LockSet(pages: pageLock) }

    /// Whether some operation holds the domain page lock now (between
    /// operations it never is: a leaked scope would leave it held).
    public var isPageLockHeld: Bool { pageLock.isLocked }

    /// The frame table (a view; the storage lives as long as `self`).
    public var frames: FrameTable { storage.table }

    /// The decoded state of `mfn`, or nil when it is not RAM.
    /// (No `Optional.map` closure here: capturing `self` in it copied the whole
    /// value to the stack on the board.)
    public func state(of mfn: MFN) -> FrameState? {
        guard let index = frames.index(of: mfn) else { return nil }
        return frames.state(at: index)
    }

    public func typeInfo(of mfn: MFN) -> TypeInfo? {
        guard let index = frames.index(of: mfn) else { return nil }
        return frames.typeInfo(at: index)
    }

    /// page_get_xenheap_gfn: one atomic load of `type_info`.
    public func xenheapGFN(of mfn: MFN) -> GFN? {
        typeInfo(of: mfn)?.xenheapGFN
    }

    /// The listener a domain's P2M must be built with (`P2M(..., listener:)`),
    /// so that removed entries reach this frame table.
    public var entryListener: FrameEntryListener { FrameEntryListener(frames: frames) }

    // MARK: domains

    /// Registers a guest domain with its (empty) P2M.
    public mutating func createDomain(_ config: DomainConfig, p2m: consuming P2M) throws(OwnershipError) {
        guard config.id.isGuest else { throw .EINVAL(.notADomain(config.id)) }
        for i in 0..<domainCount where domains[i].config.id == config.id {
            throw .EINVAL(.domainExists(config.id))
        }
        guard domainCount < maxDomains else { throw .ENOMEM(.domainSlots(maxDomains)) }
        // The P2M's removal listener must update this frame table, or xenheap
        // GFNs and foreign references would be tracked somewhere nobody reads.
        precondition(p2m.reportsTo?.entries == frames.entries, "P2M listener reports to another frame table")
        (domains + domainCount).initialize(to: GuestDomain(config: config, p2m: p2m, owed: frames.newBatch()))
        domainCount += 1
    }

    func domainIndex(_ id: DomainID) throws(OwnershipError) -> Int {
        try Self.domainIndex(id, in: domains, count: domainCount)
    }

    /// Static over the pieces it reads: called from a `mutating` operation, a
    /// method on `self` copied the whole PageOwnership to the stack on the board.
    @_transparent static func domainIndex(_ id: DomainID, in domains: UnsafeMutablePointer<GuestDomain<P2M>>,
                            count: Int) throws(OwnershipError) -> Int {
        for i in 0..<count where domains[i].config.id == id { return i }
        throw .ENOENT(.noSuchDomain(id))
    }

    /// Read access to a domain (its P2M, its xenheap frames, its IOMMU mappings).
    public func withDomain<R>(_ id: DomainID, _ body: (borrowing GuestDomain<P2M>) -> R) -> R? {
        for i in 0..<domainCount where domains[i].config.id == id { return body(domains[i]) }
        return nil
    }

    /// The ids of all domains, in creation order.
    public var domainIDs: [DomainID] {
        var ids: [DomainID] = []
        for i in 0..<domainCount { ids.append(domains[i].config.id) }
        return ids
    }

    // MARK: batches

    func newBatch() -> OwnershipFlushBatch { frames.newBatch() }

    /// Commits `batch` on domain `di`'s P2M (CPU and IOMMU invalidation,
    /// completion, then the held references drop) and returns the frames
    /// whose last reference went to the host.
    ///
    /// What an earlier commit of the domain could not finish is taken over
    /// and retried with it whenever this batch has something to flush (an
    /// empty batch touches no TLB, so it is not made to; `retryFlush` is the
    /// explicit retry). If the IOMMU does not confirm this one either, the
    /// whole of it is kept in the domain (`owesFlush`): no held reference
    /// drops, so no frame whose old translation may still be cached goes back
    /// to the host (seed 000). The operation that recorded the batch has
    /// completed its state change all the same; only the release waits.
    ///
    /// Dead frames go back to the host only where the domain page lock may be
    /// taken; a caller already holding it leaves them with the domain for its
    /// next commit.
    mutating func commit(_ batch: inout OwnershipFlushBatch, domain di: Int, retryingOwed: Bool = false,
                         holding lock: borrowing P2MLockHeld, locks: inout LockSet) {
        let mayReturn = locks.mayAcquire(.domainPages)
        // The domain's owed batch is merged in place (no empty batch swapped
        // in and destroyed around each merge: a batch value is 240 bytes).
        if (retryingOwed || !batch.isEmpty) && domains[di].owesFlush {
            domains[di].p2m.merge(&domains[di].owed, into: &batch)
        }
        do {
            try domains[di].p2m.commit(&batch, holding: lock)
        } catch {
            domains[di].lastFlushFailure = error
            domains[di].p2m.merge(&batch, into: &domains[di].owed)
        }
        if mayReturn {
            returnDeadFrames(&batch.releaser, locks: &locks)
        } else if !batch.releaser.dead.isEmpty {
            // Element by element, and emptied as a fresh array: the image then
            // carries no append(contentsOf:) or removeAll copies for [MFN].
            for i in 0..<batch.releaser.dead.count { domains[di].owed.releaser.dead.append(batch.releaser.dead[i]) }
            batch.releaser.dead = [MFN]()
        }
    }

    /// Retries the flush a failed commit left owed on `domain` (e.g. after
    /// the SMMU recovered). Returns whether nothing is owed any more.
    public mutating func retryFlush(_ domain: DomainID) throws(OwnershipError) -> Bool {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Bool in
            var batch = frames.newBatch()
            commit(&batch, domain: di, retryingOwed: true, holding: held, locks: &locks)
            return !domains[di].owesFlush
        }
    }

    /// Frames that lost their last reference at a commit go back to the host,
    /// cleaned first if a non-coherent device could reach them (seed 003).
    @_transparent mutating func returnDeadFrames(_ releaser: inout FrameReferenceReleaser, locks: inout LockSet) {
        guard !releaser.dead.isEmpty else { return }
        let pages = locks.acquirePages()
        for i in 0..<releaser.dead.count {
            let mfn = releaser.dead[i]
            guard let index = frames.index(of: mfn) else { continue }
            let s = frames.state(at: index)
            // Dead frames cannot be re-referenced, so nothing raced with us.
            guard s.references == 0, !s.isAllocated else { continue }
            _ = cleanOnRelease(mfn, s)
            frames.storeState(at: index, .hostOwned)
        }
        locks.releasePages(pages)
        releaser.dead = [MFN]()  // not removeAll(keepingCapacity:): see `commit`
    }
}

// Helpers that need only the frame table take it, not `self`: a `mutating`
// operation calling a non-mutating method of the (88-byte, ~Copyable)
// `PageOwnership` copied the whole value to the stack on the board.
extension FrameTable {
    @_transparent func requireIndex(_ mfn: MFN) throws(OwnershipError) -> Int {
        guard let index = index(of: mfn) else { throw .EINVAL(.notRAM(mfn.address)) }
        return index
    }

    @_transparent func newBatch() -> OwnershipFlushBatch {
        FlushBatch(releaser: FrameReferenceReleaser(frames: self))
    }
}

import AArch64
import Translation

/// Frames moving between the host and a guest (pKVM's
/// `__pkvm_host_donate_guest`, `__pkvm_host_share_guest`/`unshare`, the
/// guest's `share_host`/`unshare_host`; Xen's populate_physmap and
/// `guest_remove_page`), and xenheap frames shared with a guest.
extension PageOwnership where P2M: ~Copyable {
    /// Gives a host frame to `domain`, mapped read-write at `gfn`.
    /// Refused for a frame shared for DMA or lent to anybody (seed 004).
    @_transparent public mutating func hostDonateToGuest(_ mfn: MFN, to domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        try guestFrameStep(.donate, mfn, domain: domain, gfn: gfn)
    }

    /// Xen's `guest_remove_page` (decrease_reservation): the domain gives up
    /// the RAM frame at `gfn`; it goes back to the host once nothing holds it.
    ///
    /// This removal will free the frame, so its flush is never deferred
    /// (seed 000, XSA-346 part 1): the allocation reference goes into a batch
    /// committed before returning. Another holder (a range move whose flush
    /// for the frame's previous GFN is pending, a foreign or grant mapping)
    /// keeps the frame until its own reference drops.
    @discardableResult
    @_transparent public mutating func reclaim(_ domain: DomainID, gfn: GFN) throws(OwnershipError) -> MFN {
        try guestFrameStep(.reclaim, MFN(raw: 0), domain: domain, gfn: gfn)
    }

    /// Lends a host frame to `domain` at `gfn` (the host keeps ownership).
    public mutating func hostShareWithGuest(_ mfn: MFN, with domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        try guestFrameStep(.lend, mfn, domain: domain, gfn: gfn)
    }

    /// The donation, the lending and the reclaim of one frame at `gfn` of
    /// `domain`, in one body: the domain lookup, both locks, the P2M lookup,
    /// the batch and its commit are one copy on the board for the three
    /// (a function per direction carried each twice; a closure per step was
    /// one specialisation each). Returns the frame the step moved.
    ///
    /// Donating or lending: the frame must be exclusively host-owned and
    /// `gfn` free; it is mapped read-write. Donated, it becomes the domain's
    /// (one allocation reference) and starts a new life, no GFN or type of an
    /// earlier one surviving (seed 001); lent, the host keeps it. The state
    /// changes once the mapping is in (cleaned first, for a guest with its
    /// caches off and for a non-coherent domain, seed 003).
    ///
    /// Reclaiming: see `reclaim`. The page lock is released before the commit
    /// there, so frames whose last reference that commit drops go back to the
    /// host at once; a map commits under it (it frees nothing).
    @discardableResult
    @usableFromInline mutating func guestFrameStep(_ step: GuestFrameStep, _ mfn: MFN, domain: DomainID,
                                                   gfn: GFN) throws(OwnershipError) -> MFN {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        let reclaiming = step == .reclaim
        var index = 0
        if !reclaiming { index = try frames.requireIndex(mfn) }
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        // Both locks taken and released straight-line: a `withLock` closure
        // was a closure, its forwarder and a `withLock` copy on the board.
        let lockedDomain = domains + di  // not through `self`, which the body edits
        let held = lockedDomain.pointee.lock.acquire()
        // One release of each lock, whatever failed: a release per exit path
        // was its check and store again at each.
        var failure: OwnershipError? = nil
        var moved = mfn
        let pages = locks.acquirePages()
        var batch = frames.newBatch()
        do throws(OwnershipError) {
            let entry = domains[di].p2m.translate(gfn)
            if reclaiming {
                guard let entry else { throw .ENOENT(.unmapped(domain, gfn)) }
                let own = try frames.requireOwnRAM(domain, gfn, entry)
                let s = frames.state(at: own)
                guard s.hostState == .noPage else { throw .EPERM(.wrongHostState(entry.mfn, s.hostState)) }
                try domains[di].p2m.unmap(gfn, flushing: &batch, holding: held)
                frames.updateState(at: own) { (s: FrameState) -> FrameState in
                    var n = s
                    n.isAllocated = false
                    return n
                }
                batch.holdReference(entry.mfn)
                moved = entry.mfn
            } else {
                guard entry == nil else { throw .EBUSY(.gfnOccupied(domain, gfn)) }
                let s = frames.state(at: index)
                try FrameState.requireExclusivelyHostOwned(mfn, s)
                var n = s
                if step == .donate {
                    n = .donated(to: domain)
                } else {
                    n.hostState = .sharedOwned
                    n.borrower = .guest(domain)
                }
                // The guest may read it with its caches off: clean it before it is
                // mapped (that clean also serves a non-coherent domain's devices).
                if cleanBeforeGuestMapping(mfn) {
                    if !domains[di].config.enforcesCacheCoherency { n.cacheFlushRequired = true }
                } else if !domains[di].config.enforcesCacheCoherency {
                    n.cacheFlushRequired = cleanBeforeNonCoherentMapping(mfn, s).cacheFlushRequired
                }
                try domains[di].p2m.map(gfn, to: mfn, as: .ramRW, flushing: &batch, holding: held)
                if step == .donate { frames.storeTypeInfo(at: index, .initializer) }
                let exchanged = frames.compareExchangeState(at: index, expected: s, desired: n)
                precondition(exchanged, "host-owned frame changed under the domain page lock")
            }
        } catch {
            failure = error
        }
        // A refused step commits an empty batch: that touches no TLB and
        // changes nothing.
        if reclaiming {
            locks.releasePages(pages)
            commit(&batch, domain: di, holding: held, locks: &locks)
        } else {
            commit(&batch, domain: di, holding: held, locks: &locks)
            locks.releasePages(pages)
        }
        lockedDomain.pointee.lock.release(held)
        if let failure { throw failure }
        return moved
    }

    /// Ends a `hostShareWithGuest`: unmapped and flushed before the host has
    /// the frame alone again, and cleaned if a non-coherent device could reach it.
    /// The unmap holds a reference on the frame until its flush completed: if
    /// the IOMMU does not confirm it, the frame stays held with the domain's
    /// owed flush and cannot be handed on (`EBUSY(.flushPending)`) until then.
    public mutating func hostUnshareWithGuest(_ mfn: MFN, with domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        let index = try frames.requireIndex(mfn)
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Void in
            guard let entry = domains[di].p2m.translate(gfn), entry.mfn == mfn else {
                throw .ENOENT(.unmapped(domain, gfn))
            }
            let s = frames.state(at: index)
            guard s.isOwned(by: .host) else { throw .EPERM(.notOwner(mfn, owner: s.owner)) }
            guard s.isBorrowed(by: .guest(domain)) else { throw .EPERM(.borrowedBy(mfn, s.borrower)) }
            try takeReference(index, mfn)
            var batch = frames.newBatch()
            do throws(OwnershipError) {
                try domains[di].p2m.unmap(gfn, flushing: &batch, holding: held)
            } catch {
                dropReferenceTaken(index)
                commit(&batch, domain: di, holding: held, locks: &locks)
                throw error
            }
            batch.holdReference(mfn)
            commit(&batch, domain: di, holding: held, locks: &locks)
            let pages = locks.acquirePages()
            // The new word is made from the word it replaces: a reference the
            // owed flush still holds stays counted.
            _ = cleanOnRelease(mfn, frames.state(at: index))
            frames.updateState(at: index) { (s: FrameState) -> FrameState in
                var n = s
                n.hostState = .owned
                n.borrower = .none
                n.cacheFlushRequired = false
                return n
            }
            locks.releasePages(pages)
        }
    }

    /// The guest lends its frame at `gfn` to the host (host view: sharedBorrowed).
    public mutating func guestShareWithHost(_ domain: DomainID, gfn: GFN) throws(OwnershipError) {
        try moveHostView(domain, gfn: gfn, from: .noPage, to: .sharedBorrowed)
    }

    /// The guest takes back the frame at `gfn` it lent to the host.
    public mutating func guestUnshareWithHost(_ domain: DomainID, gfn: GFN) throws(OwnershipError) {
        try moveHostView(domain, gfn: gfn, from: .sharedBorrowed, to: .noPage)
    }

    /// The host's view of the guest's own RAM frame at `gfn` goes from `from`
    /// to `to`; any other view is refused with the state left alone.
    private mutating func moveHostView(_ domain: DomainID, gfn: GFN,
                                       from: HostPageState, to: HostPageState) throws(OwnershipError) {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Void in
            guard let entry = domains[di].p2m.translate(gfn) else { throw .ENOENT(.unmapped(domain, gfn)) }
            let index = try frames.requireOwnRAM(domain, gfn, entry)
            try locks.withPages { (_: borrowing PageStateLockHeld, _: inout LockSet) throws(OwnershipError) -> Void in
                try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
                    guard s.hostState == from else { throw .EPERM(.wrongHostState(entry.mfn, s.hostState)) }
                    var n = s
                    n.hostState = to
                    return n
                }
            }
        }
    }

    /// Xen's `share_xen_page_with_guest`: a xenheap frame becomes the guest's
    /// (its owner reference, PGC_allocated), typed writable or read-only with
    /// a type count of one. `type_info` changes by compare-exchange, keeping
    /// the GFN portion: seed 001's review accepted a plain read-modify-write in
    /// Xen only by an ordering argument about `count_info`; a compare-exchange
    /// needs no such argument.
    public mutating func shareXenPageWithGuest(_ mfn: MFN, with domain: DomainID, readOnly: Bool) throws(OwnershipError) {
        _ = try Self.domainIndex(domain, in: domains, count: domainCount)
        let index = try frames.requireIndex(mfn)
        var locks = lockSet()
        try locks.withPages { (_: borrowing PageStateLockHeld, _: inout LockSet) throws(OwnershipError) -> Void in
            try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
                guard s.isXenheap else { throw .EINVAL(.notXenheap(mfn)) }
                guard s.isOwned(by: .hypervisor), s.references == 0 else { throw .EPERM(.notOwner(mfn, owner: s.owner)) }
                return FrameState(owner: .guest(domain), hostState: .noPage, references: 1,
                                  isAllocated: true, isXenheap: true)
            }
            // The hypervisor filled it (shared_info, grant frames); the guest may
            // read it with its caches off.
            cleanBeforeGuestMapping(mfn)
            frames.updateTypeInfo(at: index) { (t: TypeInfo) -> TypeInfo in
                var n = t
                n.type = readOnly ? .none : .writable
                n.typeCount = 1
                return n
            }
        }
    }

    /// Makes `mfn` (a xenheap frame) the domain's shared_info page.
    public mutating func installSharedInfo(_ mfn: MFN, for domain: DomainID) throws(OwnershipError) {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        if let installed = domains[di].sharedInfo { throw .EEXIST(.sharedInfoInstalled(installed)) }
        try shareXenPageWithGuest(mfn, with: domain, readOnly: false)
        domains[di].sharedInfo = mfn
    }

    /// Appends `mfn` (a xenheap frame) to the domain's grant table.
    public mutating func installGrantFrame(_ mfn: MFN, for domain: DomainID, status: Bool) throws(OwnershipError) {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        try shareXenPageWithGuest(mfn, with: domain, readOnly: false)
        if status { domains[di].grantStatusFrames.append(mfn) } else { domains[di].grantSharedFrames.append(mfn) }
    }

    /// Attaching or detaching devices changes whether the domain's DMA snoops.
    /// Turning non-coherent replays every frame the domain may reach with a
    /// clean (seed 003, vfio's replay): its own frames, frames lent to it, and
    /// every frame held by a mapping reference (foreign and grant mappings,
    /// which may be the domain's). Over-approximating costs a clean; missing
    /// one would leak stale memory to a device.
    public mutating func setEnforcesCacheCoherency(_ domain: DomainID, _ enforces: Bool) throws(OwnershipError) {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        var locks = lockSet()
        let pages = locks.acquirePages()
        if !enforces && domains[di].config.enforcesCacheCoherency {
            cleanBeforeNonCoherentReach(holding: pages) { (s: FrameState) -> Bool in
                s.isOwned(by: .guest(domain)) || s.isBorrowed(by: .guest(domain)) || s.references > (s.isAllocated ? 1 : 0)
            }
        }
        domains[di].config.enforcesCacheCoherency = enforces
        locks.releasePages(pages)
    }


    /// The frame behind a P2M entry that must be the domain's own RAM
    /// (`FrameTable.requireOwnRAM`, for callers that are not `mutating`).
    func requireOwnRAM(_ domain: DomainID, _ gfn: GFN, _ entry: (mfn: MFN, type: P2MType)) throws(OwnershipError) -> Int {
        try frames.requireOwnRAM(domain, gfn, entry)
    }
}

extension FrameTable {
    /// The frame behind a P2M entry that must be the domain's own RAM.
    /// (On the frame table, not `PageOwnership`: see `FrameTable.requireIndex`.)
    @_transparent func requireOwnRAM(_ domain: DomainID, _ gfn: GFN, _ entry: (mfn: MFN, type: P2MType)) throws(OwnershipError) -> Int {
        guard entry.type == .ramRW || entry.type == .ramRO, let index = index(of: entry.mfn) else {
            throw .EINVAL(.notGuestRAM(domain, gfn))
        }
        let s = state(at: index)
        guard s.isOwned(by: .guest(domain)), s.isAllocated, !s.isXenheap else { throw .EINVAL(.notGuestRAM(domain, gfn)) }
        return index
    }
}

/// What `guestFrameStep` does at a domain's GFN.
@usableFromInline enum GuestFrameStep {
    /// Map a host frame there, which becomes the domain's (`hostDonateToGuest`).
    case donate
    /// Map a host frame there, lent to the domain (`hostShareWithGuest`).
    case lend
    /// Take back the domain's own frame mapped there (`reclaim`).
    case reclaim
}

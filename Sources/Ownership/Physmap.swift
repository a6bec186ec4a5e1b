import AArch64
import Translation

/// XENMEM_add_to_physmap / XENMEM_remove_physmap (Xen's
/// `xenmem_add_to_physmap_one`, `xenmem_remove_physmap`), with seed 001's
/// final rules for xenheap frames:
/// - a xenheap frame is mapped at most once: if its `type_info` holds a valid
///   GFN, mapping it again is `EBUSY`, and nothing is unmapped implicitly
///   (the reviewers: an implicit unmap punches a hole where a boot loader
///   left the page in RAM, and the OS later crashes or corrupts memory);
/// - the GFN is written under the P2M lock, after the P2M entry exists, by
///   compare-exchange; it is cleared by `FrameEntryListener` when the entry
///   goes, whoever removes it;
/// - grant-table frames are found by index and their GFN is read from the
///   frame, so a removed frame's old GFN can never be unmapped later.
extension PageOwnership where P2M: ~Copyable {
    public mutating func addToPhysmap(_ domain: DomainID, _ space: PhysmapSpace,
                                      idx: UInt64, gfn: GFN) throws(OwnershipError) -> PhysmapProgress {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        switch space {
        case .sharedInfo:
            guard idx == 0 else { throw .EINVAL(.sharedInfoIndex(idx)) }
            guard let mfn = domains[di].sharedInfo else { throw .ENOENT(.unmapped(domain, gfn)) }
            try mapXenheapFrame(mfn, domain: di, at: gfn)
        case .grantTable(let index, let status):
            guard let mfn = domains[di].grantFrame(index, status: status) else {
                throw .EINVAL(.grantFrameIndex(index, status: status))
            }
            try mapXenheapFrame(mfn, domain: di, at: gfn)
        case .gmfn:
            return try moveRange(domain, idx: GFN(raw: idx), gfn: gfn, size: 1)
        case .gmfnRange(let size):
            return try moveRange(domain, idx: GFN(raw: idx), gfn: gfn, size: size)
        case .gmfnForeign(let foreign):
            try mapForeign(GFN(raw: idx), of: foreign, into: di, at: gfn)
        case .devMMIO:
            try mapDeviceMemory(MFN(raw: idx), domain: di, at: gfn)
        }
        return .complete
    }

    /// XENMEM_remove_physmap: removes the entry at `gfn`. The frame behind it
    /// is not freed: the domain's own RAM stays allocated (to be given back
    /// with `reclaim`), a xenheap frame loses its GFN, a foreign frame's
    /// reference drops after the flush. Grant mappings go through
    /// `grantUnmap`, host-lent frames through `hostUnshareWithGuest`.
    public mutating func removePhysmap(_ domain: DomainID, gfn: GFN) throws(OwnershipError) {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Void in
            guard let entry = domains[di].p2m.translate(gfn) else {
                throw .ENOENT(.unmapped(domain, gfn))
            }
            switch entry.type {
            case .ramRW, .ramRO:
                if let s = state(of: entry.mfn) {
                    let ownRAM = s.isOwned(by: .guest(domain)) && (s.isXenheap || s.isAllocated)
                    guard ownRAM, s.hostState != .sharedBorrowed else {
                        throw s.isOwned(by: .guest(domain)) ? .EPERM(.wrongHostState(entry.mfn, s.hostState))
                                                        : .EPERM(.borrowedBy(entry.mfn, s.borrower))
                    }
                }
            case .mapForeignRW, .mapForeignRO, .mmioDirectDevice, .mmioDirectNC, .mmioDirectCacheable:
                break
            case .grantMapRW, .grantMapRO, .iommuMapRW, .iommuMapRO, .invalid:
                throw .EINVAL(.notGuestRAM(domain, gfn))
            }
            var batch = frames.newBatch()
            do throws(OwnershipError) {
                try domains[di].p2m.unmap(gfn, flushing: &batch, holding: held)
            } catch {
                commit(&batch, domain: di, holding: held, locks: &locks)
                throw error
            }
            // Committed before the P2M lock is released, as every batch is.
            commit(&batch, domain: di, holding: held, locks: &locks)
        }
    }

    /// Where grant-table frame `index` of `domain` is mapped (Xen's
    /// `gnttab_shared_gfn`/`gnttab_status_gfn` after seed 001): read from the
    /// frame's `type_info`, the only place it is kept.
    public func grantFrameGFN(_ domain: DomainID, index: Int, status: Bool) -> GFN? {
        guard let mfn = withDomain(domain, { (d: borrowing GuestDomain<P2M>) in d.grantFrame(index, status: status) }) ?? nil
        else { return nil }
        return xenheapGFN(of: mfn)
    }

    // MARK: xenheap

    mutating func mapXenheapFrame(_ mfn: MFN, domain di: Int, at gfn: GFN) throws(OwnershipError) {
        let index = try frames.requireIndex(mfn)
        let domain = domains[di].config.id
        guard TypeInfo.canHold(gfn) else { throw .EINVAL(.gfnOutOfRange(gfn)) }
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Void in
            let s = frames.state(at: index)
            guard s.isXenheap, s.isOwned(by: .guest(domain)) else { throw .EPERM(.notOwner(mfn, owner: s.owner)) }
            let info = frames.typeInfo(at: index)
            if let mapped = info.xenheapGFN { throw .EBUSY(.xenheapAlreadyMapped(mfn, at: mapped)) }
            guard domains[di].p2m.translate(gfn) == nil else { throw .EBUSY(.gfnOccupied(domain, gfn)) }
            let nonCoherent = !domains[di].config.enforcesCacheCoherency
            if nonCoherent { cleanBeforeEnteringNonCoherentDomain(index) }
            var batch = frames.newBatch()
            do throws(OwnershipError) {
                try domains[di].p2m.map(gfn, to: mfn, as: info.type == .writable ? .ramRW : .ramRO,
                                        flushing: &batch, holding: held)
            } catch {
                commit(&batch, domain: di, holding: held, locks: &locks)
                throw error
            }
            if nonCoherent { markFlushRequired(index) }
            // Under the P2M lock, after the entry exists (seed 001, page_set_xenheap_gfn).
            frames.updateTypeInfo(at: index) { (t: TypeInfo) -> TypeInfo in
                var n = t
                n.xenheapGFN = gfn
                return n
            }
            commit(&batch, domain: di, holding: held, locks: &locks)
        }
    }

    // MARK: foreign and device memory

    mutating func mapForeign(_ foreignGFN: GFN, of foreign: DomainID, into di: Int, at gfn: GFN) throws(OwnershipError) {
        let domain = domains[di].config.id
        guard foreign != domain else { throw .EPERM(.selfForeign(domain)) }
        let fi = try Self.domainIndex(foreign, in: domains, count: domainCount)
        // The foreign domain's P2M lock is taken and dropped before the
        // mapper's: never two P2M locks at once (LockOrder.swift).
        var locks = lockSet()
        locks.acquire(.p2m)
        let foreignDomain = domains + fi
        let found = foreignDomain.pointee.lock.withLock { (_: borrowing P2MLockHeld) in
            foreignDomain.pointee.p2m.translate(foreignGFN)
        }
        locks.release(.p2m)
        guard let entry = found else { throw .ENOENT(.unmapped(foreign, foreignGFN)) }
        let index = try frames.requireOwnRAM(foreign, foreignGFN, entry)
        let mfn = entry.mfn

        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Void in
            guard domains[di].p2m.translate(gfn) == nil else { throw .EBUSY(.gfnOccupied(domain, gfn)) }
            try takeReference(index, mfn)
            let nonCoherent = !domains[di].config.enforcesCacheCoherency
            if nonCoherent { cleanBeforeEnteringNonCoherentDomain(index) }
            var batch = frames.newBatch()
            do throws(OwnershipError) {
                try domains[di].p2m.map(gfn, to: mfn, as: .mapForeignRW, flushing: &batch, holding: held)
            } catch {
                dropReferenceTaken(index)
                commit(&batch, domain: di, holding: held, locks: &locks)
                throw error
            }
            if nonCoherent { markFlushRequired(index) }
            commit(&batch, domain: di, holding: held, locks: &locks)
        }
    }

    mutating func mapDeviceMemory(_ mfn: MFN, domain di: Int, at gfn: GFN) throws(OwnershipError) {
        guard !frames.isRAM(mfn) else { throw .EINVAL(.ramClaimedAsDevice(mfn.address)) }
        let domain = domains[di].config.id
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Void in
            guard domains[di].p2m.translate(gfn) == nil else { throw .EBUSY(.gfnOccupied(domain, gfn)) }
            var batch = frames.newBatch()
            do throws(OwnershipError) {
                try domains[di].p2m.map(gfn, to: mfn, as: .mmioDirectDevice, flushing: &batch, holding: held)
            } catch {
                commit(&batch, domain: di, holding: held, locks: &locks)
                throw error
            }
            commit(&batch, domain: di, holding: held, locks: &locks)
        }
    }

    // MARK: references

    /// get_page: one more reference on a live frame, refused at saturation.
    mutating func takeReference(_ index: Int, _ mfn: MFN) throws(OwnershipError) {
        try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
            guard s.references < FrameState.maxReferences else { throw .EOVERFLOW(.referenceCount(mfn)) }
            var n = s
            n.references += 1
            return n
        }
    }

    /// Undoes a `takeReference` of the same call (the frame is still held by
    /// its owner, so this never frees it).
    mutating func dropReferenceTaken(_ index: Int) {
        frames.updateState(at: index) { (s: FrameState) -> FrameState in
            var n = s
            n.references -= 1
            return n
        }
    }

    /// Seed 003, before a frame enters a non-coherent domain's P2M: clean it
    /// unless it is already marked (cleaned before it first became reachable).
    /// The mark itself is set only once the mapping exists, by
    /// `markFlushRequired`, so a mapping that fails leaves no trace.
    mutating func cleanBeforeEnteringNonCoherentDomain(_ index: Int) {
        let s = frames.state(at: index)
        guard !s.cacheFlushRequired else { return }
        _ = cleanBeforeNonCoherentMapping(frames.frame(at: index), s)
    }

    mutating func markFlushRequired(_ index: Int) {
        frames.updateState(at: index) { (s: FrameState) -> FrameState in
            var n = s
            n.cacheFlushRequired = true
            return n
        }
    }
}

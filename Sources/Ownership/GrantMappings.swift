import AArch64
import Translation

/// Grant mappings (Xen's `create_grant_host_mapping`/`replace_grant_host_mapping`
/// on Arm) and, for a domain that needs them, the 1:1 IOMMU mappings of the
/// granted frames (seed 002, `gnttab_need_iommu_mapping`).
///
/// A grant mapping holds a reference on the granted frame, dropped after the
/// flush that removes the mapping. For a direct-mapped domain with the IOMMU
/// enabled, the frame is also mapped at GFN == MFN with an IOMMU-only type, so
/// devices the domain programs with machine addresses can reach it; that
/// mapping is counted per frame (the same frame may be granted, or mapped,
/// several times) and writable while any of the grant mappings is.
extension PageOwnership where P2M: ~Copyable {
    /// Maps `frame`, granted by `granter`, into `domain` at `gfn`.
    public mutating func grantMap(_ frame: MFN, grantedBy granter: DomainID, into domain: DomainID,
                                  at gfn: GFN, readOnly: Bool) throws(OwnershipError) {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        _ = try Self.domainIndex(granter, in: domains, count: domainCount)
        guard granter != domain else { throw .EPERM(.selfForeign(domain)) }
        let index = try frames.requireIndex(frame)
        let s = frames.state(at: index)
        guard s.isOwned(by: .guest(granter)), s.isAllocated, !s.isXenheap else {
            throw .EPERM(.notOwner(frame, owner: s.owner))
        }
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Void in
            guard domains[di].p2m.translate(gfn) == nil else { throw .EBUSY(.gfnOccupied(domain, gfn)) }

            let needsIOMMU = domains[di].config.needsIOMMUMapping
            let identity = GFN(raw: frame.raw)
            let slot = domains[di].iommuMappingSlot(frame)
            var upgrade = false
            if needsIOMMU {
                if slot.found {
                    let m = domains[di].iommuGrantMappings[slot.index]
                    guard m.mappings < UInt32.max else { throw .EOVERFLOW(.iommuMappingCount(frame)) }
                    upgrade = !readOnly && m.writableMappings == 0
                } else if domains[di].p2m.translate(identity) != nil {
                    throw .EBUSY(.gfnOccupied(domain, identity))
                }
            }
            try takeReference(index, frame)
            let nonCoherent = !domains[di].config.enforcesCacheCoherency
            if nonCoherent { cleanBeforeEnteringNonCoherentDomain(index) }

            var batch = frames.newBatch()
            do throws(OwnershipError) {
                try domains[di].p2m.map(gfn, to: frame, as: readOnly ? .grantMapRO : .grantMapRW, flushing: &batch, holding: held)
            } catch {
                dropReferenceTaken(index)
                commit(&batch, domain: di, holding: held, locks: &locks)
                throw error
            }
            if needsIOMMU {
                do throws(OwnershipError) {
                    if !slot.found {
                        try domains[di].p2m.map(identity, to: frame, as: readOnly ? .iommuMapRO : .iommuMapRW,
                                                flushing: &batch, holding: held)
                    } else if upgrade {
                        try domains[di].p2m.retype(identity, from: .iommuMapRO, to: .iommuMapRW, flushing: &batch, holding: held)
                    }
                } catch {
                    // Undo the grant mapping: its reference goes through the batch
                    // and is dropped by the commit, restoring the count.
                    do {
                        try domains[di].p2m.unmap(gfn, flushing: &batch, holding: held)
                    } catch {
                        preconditionFailure("unmapping a 4 KiB leaf needs no table page")
                    }
                    commit(&batch, domain: di, holding: held, locks: &locks)
                    throw error
                }
                if slot.found {
                    domains[di].iommuGrantMappings[slot.index].mappings += 1
                    if !readOnly { domains[di].iommuGrantMappings[slot.index].writableMappings += 1 }
                } else {
                    domains[di].iommuGrantMappings.insert(
                        IOMMUGrantMapping(frame: frame, mappings: 1, writableMappings: readOnly ? 0 : 1), at: slot.index)
                }
            }
            if nonCoherent { markFlushRequired(index) }
            commit(&batch, domain: di, holding: held, locks: &locks)
        }
    }

    /// Removes the grant mapping at `gfn` of `domain`, and the frame's 1:1
    /// IOMMU mapping with the last of them. The frame's reference drops after
    /// the flush; if its owner already gave it up, it then goes to the host.
    public mutating func grantUnmap(_ domain: DomainID, gfn: GFN) throws(OwnershipError) {
        let di = try Self.domainIndex(domain, in: domains, count: domainCount)
        var locks = lockSet()
        locks.acquire(.p2m)
        defer { locks.release(.p2m) }
        let lockedDomain = domains + di  // not through `self`, which the body edits
        return try lockedDomain.pointee.lock.withLock { (held: borrowing P2MLockHeld) throws(OwnershipError) -> Void in
            guard let entry = domains[di].p2m.translate(gfn),
                  entry.type == .grantMapRW || entry.type == .grantMapRO else {
                throw .EINVAL(.notGrantMapped(domain, gfn))
            }
            let frame = entry.mfn
            let identity = GFN(raw: frame.raw)
            let slot = domains[di].iommuMappingSlot(frame)
            let writable = entry.type == .grantMapRW
            var batch = frames.newBatch()
            do {
                try domains[di].p2m.unmap(gfn, flushing: &batch, holding: held)
                if slot.found {
                    let m = domains[di].iommuGrantMappings[slot.index]
                    if m.mappings == 1 {
                        try domains[di].p2m.unmap(identity, flushing: &batch, holding: held)
                    } else if writable && m.writableMappings == 1 {
                        try domains[di].p2m.retype(identity, from: .iommuMapRW, to: .iommuMapRO, flushing: &batch, holding: held)
                    }
                }
            } catch {
                preconditionFailure("unmapping or retyping a 4 KiB leaf needs no table page")
            }
            if slot.found {
                if domains[di].iommuGrantMappings[slot.index].mappings == 1 {
                    domains[di].iommuGrantMappings.remove(at: slot.index)
                } else {
                    domains[di].iommuGrantMappings[slot.index].mappings -= 1
                    if writable { domains[di].iommuGrantMappings[slot.index].writableMappings -= 1 }
                }
            }
            commit(&batch, domain: di, holding: held, locks: &locks)
        }
    }
}

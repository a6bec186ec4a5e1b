import AArch64
import Ownership
import Translation

/// The host's identity stage 2 and its DMA translation, as the page-state
/// operations need to edit them. The board conforms its host P2M (and the
/// SMMU domain that shares or mirrors it) to this.
public protocol HostStage2Editor: ~Copyable {
    /// Removes `frame` from the host's stage 2 and from every IOMMU
    /// translation the host's devices use, and returns only once the CPU TLB
    /// and IOMMU invalidations have completed: from then on neither the host's
    /// CPUs nor its devices can reach the frame. Throws and changes nothing
    /// when it cannot (e.g. no table page to split a block).
    mutating func unmapFromHost(_ frame: MFN) throws(OwnershipError)
    /// Maps `frame` back into the host's stage 2 (identity, Normal memory) and
    /// its DMA translation. Throws and changes nothing when it cannot.
    mutating func mapIntoHost(_ frame: MFN) throws(OwnershipError)
}

/// `HostPageOperations` over the real page-state tables plus the host's
/// stage 2: the ownership transition and the host mapping change together,
/// or neither does.
///
/// Order: a frame leaves the host's mappings only after the ownership
/// transition that allows it succeeded, and the transition is undone if the
/// mapping cannot change; a frame comes back into the host's mappings only
/// once the tables say it is the host's again. DMA sharing only counts: the
/// host's devices already reach all host memory through the host's domain,
/// and the count is what keeps a shared frame from being donated (seed 004).
///
/// Not thread-safe by itself: the caller holds the lock that guards both
/// the tables and the host stage 2 for each call.
public struct HostOwnershipOperations<Cache: CacheMaintenance, P2M: GuestPhysmap & ~Copyable,
                                      Stage2: HostStage2Editor & ~Copyable>: HostPageOperations, ~Copyable {
    public var ownership: PageOwnership<Cache, P2M>
    public var stage2: Stage2

    public init(ownership: consuming PageOwnership<Cache, P2M>, stage2: consuming Stage2) {
        self.ownership = ownership
        self.stage2 = stage2
    }

    @_transparent public mutating func shareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError) {
        // The host's claim that this is RAM is checked by the tables (seed 004).
        try ownership.hostShareDMA(first.address, bytes: count << PageSize.shift4K, isRAM: true)
    }

    @_transparent public mutating func unshareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError) {
        try ownership.hostUnshareDMA(first.address, bytes: count << PageSize.shift4K)
    }

    @_transparent public mutating func donateToHypervisor(_ frame: MFN) throws(OwnershipError) {
        try ownership.hostDonateToHypervisor(frame)
        do {
            try stage2.unmapFromHost(frame)
        } catch {
            // The frame was the host's a moment ago under the same lock, so
            // giving it back cannot fail.
            try? ownership.hypervisorDonateToHost(frame)
            throw error
        }
    }

    @_transparent public mutating func reclaimFromHypervisor(_ frame: MFN) throws(OwnershipError) {
        try ownership.hypervisorDonateToHost(frame)
        do {
            try stage2.mapIntoHost(frame)
        } catch {
            try? ownership.hostDonateToHypervisor(frame)
            throw error
        }
    }

    @_transparent public mutating func donateToGuest(_ frame: MFN, domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        try ownership.hostDonateToGuest(frame, to: domain, at: gfn)
        do {
            try stage2.unmapFromHost(frame)
        } catch {
            // Just donated, nothing else holds it: the frame returns to the host.
            _ = try? ownership.reclaim(domain, gfn: gfn)
            throw error
        }
    }

    /// The guest gives the frame up; it is mapped back into the host when the
    /// tables say it is the host's again. A frame something else still holds
    /// (a pending flush, a foreign mapping) returns to the host later, and is
    /// not mapped here.
    @_transparent public mutating func reclaimFromGuest(_ domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        // The frame comes from the reclaim itself: a `withDomain` closure reading
        // the P2M first copied the whole P2M on the board.
        let frame = try ownership.reclaim(domain, gfn: gfn)
        // Through the frame table: `ownership.state(of:)` from this mutating
        // method copied the whole PageOwnership on the board.
        let frames = ownership.frames
        guard let index = frames.index(of: frame), frames.state(at: index).isOwned(by: .host) else { return }
        do {
            try stage2.mapIntoHost(frame)
        } catch {
            // Nothing else holds the frame (it came straight back), so the
            // donation can be redone.
            try? ownership.hostDonateToGuest(frame, to: domain, at: gfn)
            throw error
        }
    }
}

import AArch64
import Translation

/// Host ↔ hypervisor transitions (pKVM's `__pkvm_host_donate_hyp`,
/// `__pkvm_hyp_donate_host`, `__pkvm_host_share_hyp`, `__pkvm_host_unshare_hyp`),
/// and the xenheap: frames the hypervisor allocates for itself and may later
/// share with a guest (Xen's `alloc_xenheap_page`, `share_xen_page_with_guest`).
///
/// All of them refuse a frame shared for DMA (seed 004: the host could read a
/// donated frame back through the device) and run under the domain page lock.
extension PageOwnership where P2M: ~Copyable {
    public mutating func hostDonateToHypervisor(_ mfn: MFN) throws(OwnershipError) {
        try updateFrameState(mfn, .hostDonatesToHypervisor)
    }

    public mutating func hypervisorDonateToHost(_ mfn: MFN) throws(OwnershipError) {
        try updateFrameState(mfn, .hypervisorDonatesToHost)
    }

    /// The share with the hypervisor and its end are not among the board's
    /// host calls: each is its own step here, so the board's transition
    /// switch (`updateFrameState`) carries only the transitions it runs.
    public mutating func hostShareWithHypervisor(_ mfn: MFN) throws(OwnershipError) {
        let index = try frames.requireIndex(mfn)
        var locks = lockSet()
        try locks.withPages { (_: borrowing PageStateLockHeld, _: inout LockSet) throws(OwnershipError) -> Void in
            try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
                try FrameState.requireExclusivelyHostOwned(mfn, s)
                var n = s
                n.hostState = .sharedOwned
                n.borrower = .hypervisor
                return n
            }
        }
    }

    public mutating func hostUnshareWithHypervisor(_ mfn: MFN) throws(OwnershipError) {
        let index = try frames.requireIndex(mfn)
        var locks = lockSet()
        try locks.withPages { (_: borrowing PageStateLockHeld, _: inout LockSet) throws(OwnershipError) -> Void in
            try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
                guard s.isOwned(by: .host) else { throw .EPERM(.notOwner(mfn, owner: s.owner)) }
                guard s.isBorrowed(by: .hypervisor) else { throw .EPERM(.borrowedBy(mfn, s.borrower)) }
                var n = s
                n.hostState = .owned
                n.borrower = .none
                return n
            }
        }
    }

    /// Takes a host frame into the xenheap (alloc_xenheap_page): owned by the
    /// hypervisor, `PGC_xen_heap`, and `type_info` reset to its initializer so
    /// no GFN of an earlier life survives (seed 001, PGT_TYPE_INFO_INITIALIZER).
    public mutating func allocateXenheapPage(_ mfn: MFN) throws(OwnershipError) {
        try updateFrameState(mfn, .allocatesXenheap)
    }

    /// `mfn`'s state becomes what `transition` makes of it, under the domain
    /// page lock; a refusal leaves it as it was. One copy for every
    /// transition: a closure per transition was one specialisation (and its
    /// forwarder) each on the board.
    @_transparent private mutating func updateFrameState(_ mfn: MFN, _ transition: HostHypervisorTransition) throws(OwnershipError) {
        let index = try frames.requireIndex(mfn)
        var locks = lockSet()
        let pages = locks.acquirePages()
        var failure: OwnershipError? = nil  // one release of the lock, whatever failed
        do throws(OwnershipError) {
            try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
                try transition.apply(to: s, of: mfn)
            }
            if transition == .allocatesXenheap {
                // Nobody can reach the frame's type_info before this returns: plain
                // store over whatever the previous life left.
                frames.storeTypeInfo(at: index, .initializer)
            }
        } catch {
            failure = error
        }
        locks.releasePages(pages)
        if let failure { throw failure }
    }

    /// Gives a xenheap frame back to the host (free_xenheap_page). Refused while
    /// a guest still holds it or while it is mapped anywhere.
    public mutating func freeXenheapPage(_ mfn: MFN) throws(OwnershipError) {
        let index = try frames.requireIndex(mfn)
        var locks = lockSet()
        try locks.withPages { (_: borrowing PageStateLockHeld, _: inout LockSet) throws(OwnershipError) -> Void in
            let info = frames.typeInfo(at: index)
            if let gfn = info.xenheapGFN { throw .EBUSY(.xenheapAlreadyMapped(mfn, at: gfn)) }
            try frames.updateState(at: index) { (s: FrameState) throws(OwnershipError) -> FrameState in
                guard s.isXenheap else { throw .EINVAL(.notXenheap(mfn)) }
                guard s.isOwned(by: .hypervisor) else { throw .EPERM(.notOwner(mfn, owner: s.owner)) }
                return .hostOwned
            }
        }
    }
}

/// The host <-> hypervisor transitions that change one frame's state word
/// and nothing else (`PageOwnership.updateFrameState`).
enum HostHypervisorTransition {
    case hostDonatesToHypervisor
    case hypervisorDonatesToHost
    case allocatesXenheap

    /// The state `s` of `mfn` becomes, or the refusal that leaves it alone.
    @_transparent func apply(to s: FrameState, of mfn: MFN) throws(OwnershipError) -> FrameState {
        switch self {
        case .hostDonatesToHypervisor:
            try FrameState.requireExclusivelyHostOwned(mfn, s)
            return .hypervisorOwned
        case .hypervisorDonatesToHost:
            guard s.isOwned(by: .hypervisor), !s.isXenheap else { throw .EPERM(.notOwner(mfn, owner: s.owner)) }
            return .hostOwned
        case .allocatesXenheap:
            try FrameState.requireExclusivelyHostOwned(mfn, s)
            return .xenheapOwned
        }
    }
}

import AArch64
import Translation

/// The page-state authority: the frame table, the host's DMA domains and the
/// cache maintenance that non-coherent devices require. Guest domains (their
/// P2M and grant bookkeeping, `GuestDomain`) are owned by the caller and
/// passed in `inout` to the operations that edit them, one at a time, which
/// is the lock order's "one P2M lock at a time" made structural.
///
/// Every operation either completes or throws with the frame table, the
/// domain and its P2M exactly as they were (DESIGN.md rule 7).
public struct PageOwnership<Cache: CacheMaintenance>: ~Copyable {
    let storage: FrameTableStorage
    /// Clean+invalidate to the point of coherency (seed 003); on the host a recording fake.
    public var cache: Cache
    /// Lock scopes of the running operation (see LockOrder.swift).
    public internal(set) var locks = LockSet()
    /// The host's device address spaces (seed 003: vfio's domains of one
    /// container). Every host DMA share is reachable from all of them.
    public internal(set) var hostDMADomains: [DMADomain] = []

    public init(banks: [MemoryBank], cache: Cache) throws(OwnershipError) {
        storage = try FrameTableStorage(banks: banks)
        self.cache = cache
    }

    /// The frame table (a view; the storage lives as long as `self`).
    public var frames: FrameTable { storage.table }

    /// The decoded state of `mfn`, or nil when it is not RAM.
    public func state(of mfn: MFN) -> FrameState? {
        frames.index(of: mfn).map { frames.state(at: $0) }
    }

    public func typeInfo(of mfn: MFN) -> TypeInfo? {
        frames.index(of: mfn).map { frames.typeInfo(at: $0) }
    }

    /// page_get_xenheap_gfn: one atomic load of `type_info`.
    public func xenheapGFN(of mfn: MFN) -> GFN? {
        typeInfo(of: mfn)?.xenheapGFN
    }

    func requireIndex(_ mfn: MFN) throws(OwnershipError) -> Int {
        guard let index = frames.index(of: mfn) else { throw .EINVAL(.notRAM(mfn.address)) }
        return index
    }
}

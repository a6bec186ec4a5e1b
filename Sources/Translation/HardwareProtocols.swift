import AArch64

/// Physical memory as the hypervisor sees it: a PA gives a 64-bit word.
///
/// On the board the EL2 identity map makes this a plain pointer access; in
/// XCTest it is a fake over host memory that can record every write.
/// Table walkers, the SMMU queues and stream tables all go through it.
public protocol PhysicalMemory {
    func load64(_ address: PhysAddr) -> UInt64
    func store64(_ address: PhysAddr, _ value: UInt64)
    /// Zero one 4 KiB frame (a fresh table page, a queue, a stream table).
    func zeroFrame(_ frame: MFN)
    /// Order every earlier store before every later one as observed by table
    /// walkers. Board: exactly `DMB ISHST` (Arm ARM B2.3 "Ordering requirements":
    /// a walker is an observer in the inner shareable domain, and an SMMU that
    /// walks these tables coherently is programmed inner shareable too). The
    /// engine calls it after filling a new table (fresh or a block split) and
    /// before storing the descriptor that links it, so no walker can reach the
    /// table before its contents. It is not a substitute for the barrier before a
    /// TLBI: that one is `TLBMaintenance`'s. Has a no-op default (see below).
    func orderStoresForWalkers()
}

/// Where table pages come from and go back to (aarch64-paging's
/// `allocate_table`/`deallocate_table`, Hafnium's mpool).
public protocol TablePageSource {
    /// A zeroed 4 KiB frame, or nil when the pool is empty.
    mutating func allocateTablePage() -> MFN?
    mutating func freeTablePage(_ frame: MFN)
    /// Frames still available, so a two-phase update can reserve before it writes.
    var availableTablePages: Int { get }
    /// `count` contiguous zeroed frames aligned to `count` (a concatenated stage-2 root);
    /// has a default (below) for pools that only serve single pages.
    mutating func allocateContiguousTablePages(_ count: Int) -> MFN?
}

/// CPU TLB maintenance for stage-2 (and stage-1 EL2) translations.
///
/// What a board implementation must do (Arm ARM D8.13 "TLB maintenance",
/// "Ordering and completion of TLB maintenance instructions"):
/// - `invalidateStage2` and `invalidateVMID` start with `DSB ISHST`, so the
///   descriptor writes that made the old entries invalid are visible to every
///   walker before the TLBI is (the engine issues no barrier of its own there),
///   then issue the broadcast TLBIs (`TLBI IPAS2E1IS` per page or `TLBI RIPAS2E1IS`
///   with FEAT_TLBIRANGE, then `TLBI VMALLE1IS` because stage-1 entries combined
///   with stage 2 are tagged by VMID, not IPA; `TLBI VMALLS12E1IS` for a whole
///   VMID). Both need VTTBR_EL2.VMID = `vmid` while they run.
/// - `synchronize` is `DSB ISH` (then `ISB` for the local CPU): it returns only
///   when every TLBI issued before it has completed on every PE.
/// Host: a recording fake.
public protocol TLBMaintenance {
    /// Invalidate stage-2 (and combined stage-1+2) entries for `pages` 4 KiB pages
    /// starting at `ipa`, for VMID `vmid`. Implementations choose per-page,
    /// range or whole-VMID invalidation.
    mutating func invalidateStage2(vmid: UInt16, ipa: IPA, pages: UInt64)
    /// Invalidate everything tagged with this VMID (VMALLS12E1IS).
    mutating func invalidateVMID(_ vmid: UInt16)
    /// Wait for completion of every invalidation issued so far (DSB ISH).
    mutating func synchronize()
}

/// Data cache maintenance to the point of coherency, for devices that do not
/// snoop the CPU caches (non-coherent SMMU walks, non-coherent DMA masters).
public protocol CacheMaintenance {
    /// Clean (write back) lines covering [address, address+bytes) to PoC.
    mutating func clean(_ address: PhysAddr, bytes: UInt64)
    /// Clean and invalidate lines covering [address, address+bytes) to PoC.
    mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64)
    /// Order the maintenance before later accesses (DSB).
    mutating func synchronize()
}

// Defaults for conformances that need neither: pools that never back a
// concatenated stage-2 root, and memories whose stores are already ordered.

extension TablePageSource {
    /// `count` physically contiguous zeroed table pages aligned to `count` pages, for a
    /// concatenated stage-2 root (Arm ARM "Concatenated translation tables": 2-16 tables, aligned to their total
    /// size). The default serves only `count == 1`; pools that back P2Ms with
    /// concatenated roots provide this.
    public mutating func allocateContiguousTablePages(_ count: Int) -> MFN? {
        count == 1 ? allocateTablePage() : nil
    }
}

extension PhysicalMemory {
    /// Order every earlier store before every later one as seen by table walkers
    /// (board: DMB ISHST). Called between filling a new table and the store of the
    /// descriptor that links it, so a walker never sees the link before the contents.
    /// The default is for memories whose stores are already ordered (host fakes);
    /// the board's `PhysicalMemory` must implement it.
    @inline(__always) public func orderStoresForWalkers() {}
}

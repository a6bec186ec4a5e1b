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
    /// Order earlier stores before later ones for table walkers (board: DMB ISHST);
    /// has a no-op default (added for issue 4, see the extension below).
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
    /// has a default for pools that only serve single pages (added for issue 4).
    mutating func allocateContiguousTablePages(_ count: Int) -> MFN?
}

/// CPU TLB maintenance for stage-2 (and stage-1 EL2) translations.
/// Board: TLBI + DSB ISH; host: a recording fake.
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

// Additive extensions (issue 4): concatenated stage-2 roots and store ordering.

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
    /// The default is for memories whose stores are already ordered (host fakes).
    @inline(__always) public func orderStoresForWalkers() {}
}

/// Where table pages come from and go back to (aarch64-paging's
/// `allocate_table`/`deallocate_table`, Hafnium's mpool).
public protocol TablePageSource {
    /// A zeroed 4 KiB frame, or nil when the pool is empty.
    mutating func allocateTablePage() -> MFN?
    mutating func freeTablePage(_ frame: MFN)
    /// Frames still available, so a two-phase update can reserve before it writes.
    var availableTablePages: Int { get }
    /// `count` contiguous zeroed frames aligned to `count` (a concatenated stage-2 root);
    /// has a default for pools that only serve single pages.
    mutating func allocateContiguousTablePages(_ count: Int) -> MFN?
    /// The table engine's count of valid entries in `frame`, one of this pool's
    /// pages in use: zero from the moment the page is handed out (with either
    /// allocation call), then what `setValidEntryCount` last stored. The engine
    /// keeps it so that it knows a table has emptied without reading its 512
    /// entries (pKVM keeps the same count in the table page's refcount); the pool
    /// only stores it, next to the page's other bookkeeping.
    func validEntryCount(_ frame: MFN) -> Int
    mutating func setValidEntryCount(_ frame: MFN, _ count: Int)
}

extension TablePageSource {
    /// `count` physically contiguous zeroed table pages aligned to `count` pages, for a
    /// concatenated stage-2 root (Arm ARM "Concatenated translation tables": 2-16 tables, aligned to their total
    /// size). The default serves only `count == 1`; pools that back P2Ms with
    /// concatenated roots provide this.
    public mutating func allocateContiguousTablePages(_ count: Int) -> MFN? {
        count == 1 ? allocateTablePage() : nil
    }
}

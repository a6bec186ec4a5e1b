import AArch64

/// What edits of one translation table owe the walkers that may still cache its
/// old entries (CPU TLBs, an SMMU's TLBs and walk caches): the input ranges to
/// invalidate, and the table pages the edits unlinked. An unlinked page may still
/// be walked through a cached table descriptor, so it goes back to its pool only
/// after the invalidation of every recorded range has completed on every walker
/// (DESIGN.md rule 1; seed 000, XSA-346). The P2M's `FlushBatch` and the SMMU's
/// stage-1 mirror both keep what they owe here, and `releaseUnlinkedTables` is
/// the only place an unlinked table page is freed.
///
/// The unlinked pages are threaded through their own entries, so the list needs
/// no storage: each page's link sits in an entry the edit that unlinked it had
/// just cleared where it can say which (its cache line is then still hot; a table
/// emptied by a random single-page unmap would otherwise cost a second cache miss),
/// else in entry 0; the link names the next page and that page's entry. The link is
/// written with bit 0 (valid) clear: a walker that
/// still reaches the page through a stale walk-cache entry reads an invalid
/// descriptor there, never a stale output address. `~Copyable` because a copy
/// would be a second owner of the same pages.
public struct PendingInvalidation: ~Copyable {
    /// Input frame ranges whose old translations may be cached.
    public private(set) var ranges = InvalidationRanges()
    /// Head of the unlinked list (MFN raw), `endOfList` when empty.
    var unlinkedHead: UInt64 = PendingInvalidation.endOfList
    /// The entry of the head page that holds its link.
    var unlinkedHeadEntry = 0
    public private(set) var unlinkedTablePages = 0

    static var endOfList: UInt64 { UInt64.max }
    /// Marks a link to a next page (bit 2; bit 0, the valid bit, stays clear).
    /// Bits [11:3] hold the next page's link entry, [63:12] its frame.
    static var linkTag: UInt64 { 1 << 2 }

    @_transparent public init() {}

    /// Nothing to invalidate and no page waiting.
    public var isEmpty: Bool { ranges.isEmpty && unlinkedTablePages == 0 }

    /// Old translations of [first, first+frames) may be cached.
    @inline(__always)
    public mutating func recordInvalidation(_ first: UInt64, frames: UInt64) {
        ranges.record(first, frames: frames)
    }

    /// Whether a recorded range overlaps [first, first+frames), and the i-th
    /// range, read in place (see `InvalidationRanges.overlapsInPlace`).
    @_transparent mutating func owesInvalidation(overlapping first: UInt64, frames: UInt64) -> Bool {
        ranges.overlapsInPlace(first, frames: frames)
    }
    @_transparent mutating func range(_ i: Int) -> (first: UInt64, frames: UInt64) {
        ranges.rangeInPlace(i)
    }

    /// Everything the table translates may be cached (a whole-VMID or whole-ASID
    /// invalidation is owed).
    public mutating func recordInvalidationOfEverything() {
        ranges.recordEverything()
    }

    /// `frame` left the table; it waits for `releaseUnlinkedTables`. Its entry
    /// `entry` (0-511) is overwritten by the list's link (any entry may be: no
    /// walker may use the page any more, and a stale one reads it as invalid).
    public mutating func recordUnlinkedTable<M: PhysicalMemory>(_ frame: MFN, entry: Int = 0, memory: M) {
        let link = unlinkedHead == Self.endOfList
            ? 0 : unlinkedHead << PageSize.shift4K | UInt64(unlinkedHeadEntry) << 3 | Self.linkTag
        memory.store64(frame.address.adding(UInt64(entry) &* TableLevel.descriptorBytes), link)
        unlinkedHead = frame.raw
        unlinkedHeadEntry = entry
        unlinkedTablePages &+= 1  // distinct pages: far below Int.max
    }

    /// The invalidations of every recorded range have been issued and have
    /// completed on every walker: forget the ranges. Unlinked pages stay until
    /// `releaseUnlinkedTables`.
    public mutating func rangesInvalidated() {
        ranges.removeAll()
    }

    /// Give every unlinked page back to `pool`; returns how many. Only once no
    /// range is owed (`rangesInvalidated` after a completed invalidation): a page
    /// unlinked by an edit is covered by a range that edit recorded.
    @discardableResult
    public mutating func releaseUnlinkedTables<M: PhysicalMemory, Pool: TablePageSource>(
        to pool: inout Pool, memory: M
    ) -> Int {
        precondition(ranges.isEmpty, "table pages released before their invalidation completed")
        let freed = unlinkedTablePages
        var next = unlinkedHead, entry = unlinkedHeadEntry
        while next != Self.endOfList {
            let frame = MFN(raw: next)
            (next, entry) = Self.successor(memory.load64(Self.linkAddress(frame, entry)))
            pool.freeTablePage(frame)
        }
        unlinkedHead = Self.endOfList
        unlinkedHeadEntry = 0
        unlinkedTablePages = 0
        return freed
    }

    /// Take over everything `other` owes (ranges and pages), leaving it empty.
    /// `memory` is the one the pages are threaded through.
    public mutating func absorb<M: PhysicalMemory>(_ other: inout PendingInvalidation, memory: M) {
        ranges.formUnion(emptying: &other.ranges)
        var next = other.unlinkedHead, entry = other.unlinkedHeadEntry
        while next != Self.endOfList {
            let frame = MFN(raw: next)
            let link = Self.successor(memory.load64(Self.linkAddress(frame, entry)))
            recordUnlinkedTable(frame, entry: entry, memory: memory)
            (next, entry) = link
        }
        other.unlinkedHead = Self.endOfList
        other.unlinkedHeadEntry = 0
        other.unlinkedTablePages = 0
    }

    /// The frame a link word points at (or `endOfList`) and that frame's link entry.
    @inline(__always) static func successor(_ link: UInt64) -> (frame: UInt64, entry: Int) {
        link == 0 ? (endOfList, 0) : (link >> PageSize.shift4K, Int((link >> 3) & 0x1FF))
    }
    @inline(__always) static func linkAddress(_ frame: MFN, _ entry: Int) -> PhysAddr {
        frame.address.adding(UInt64(entry) &* TableLevel.descriptorBytes)
    }
}

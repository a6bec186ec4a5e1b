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
/// else in entry 0; the link names the next page and that page's entry.
///
/// An emptied page (no valid entry: a walker finds nothing there either way) is
/// also a collecting page: its entry 0 holds its link, and its entries 1-511
/// take the frames of the next pages unlinked, which then need no link of their
/// own. The release reads those frames in order, eight to a cache line, instead
/// of following one link per page, each a cache miss that must complete before
/// the next load can start (thousands of pages after a large or random unmap).
/// Only the newest collecting page can be partly filled: a page becomes one only
/// when there is no collecting page with room.
///
/// Every word written into an unlinked page has bit 0 (valid) clear: a walker that
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
    /// The collecting page with room (MFN raw), `endOfList` when there is none,
    /// and how many of its entries 1-511 hold a frame.
    var collector: UInt64 = PendingInvalidation.endOfList
    var collected = 0

    static var endOfList: UInt64 { UInt64.max }
    /// Marks a link to a next page (bit 2; bit 0, the valid bit, stays clear).
    /// Bits [11:3] hold the next page's link entry, [63:12] its frame. Also set
    /// in a collected frame's word ([63:12] the frame).
    static var linkTag: UInt64 { 1 << 2 }
    /// Set in a collecting page's own link word (bit 1).
    static var collectorTag: UInt64 { 1 << 1 }
    /// Entries 1...511 of a collecting page hold frames.
    static var collectorSlots: Int { TableLevel.entriesPerTable &- 1 }

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

    /// `frame` left the table; it waits for `releaseUnlinkedTables`. Either its
    /// frame goes into the collecting page, which has room (nothing is written to
    /// `frame`), or its entry `entry` (0-511) is overwritten by the list's link (any
    /// entry may be: no walker may use the page any more, and a stale one reads it
    /// as invalid). `emptied`: no entry of `frame` is valid, so it may become the
    /// collecting page (its link then goes into entry 0).
    public mutating func recordUnlinkedTable<M: PhysicalMemory>(
        _ frame: MFN, entry: Int = 0, emptied: Bool = false, memory: M
    ) {
        unlinkedTablePages &+= 1  // distinct pages: far below Int.max
        if collected < Self.collectorSlots && collector != Self.endOfList {
            collected &+= 1
            memory.store64(Self.linkAddress(MFN(raw: collector), collected),
                           frame.raw << PageSize.shift4K | Self.linkTag)
            return
        }
        let linkEntry = emptied ? 0 : entry
        let next = unlinkedHead == Self.endOfList
            ? 0 : unlinkedHead << PageSize.shift4K | UInt64(unlinkedHeadEntry) << 3 | Self.linkTag
        memory.store64(Self.linkAddress(frame, linkEntry), emptied ? next | Self.collectorTag : next)
        unlinkedHead = frame.raw
        unlinkedHeadEntry = linkEntry
        if emptied {
            collector = frame.raw
            collected = 0
        }
    }

    /// How many frames the collecting page `frame` holds (its link word is `link`).
    @inline(__always) func collectedFrames(_ frame: UInt64, link: UInt64) -> Int {
        guard link & Self.collectorTag != 0 else { return 0 }
        // Only the newest collecting page can be partly filled.
        return frame == collector ? collected : Self.collectorSlots
    }

    /// The frame in entry `slot` (1-511) of collecting page `page`.
    @inline(__always) static func collectedFrame<M: PhysicalMemory>(_ page: MFN, _ slot: Int, memory: M) -> MFN {
        MFN(raw: memory.load64(linkAddress(page, slot)) >> PageSize.shift4K)
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
            let link = memory.load64(Self.linkAddress(frame, entry))
            let count = collectedFrames(next, link: link)
            var slot = 1
            while slot <= count {
                pool.freeTablePage(Self.collectedFrame(frame, slot, memory: memory))
                slot &+= 1
            }
            (next, entry) = Self.successor(link)
            pool.freeTablePage(frame)
        }
        unlinkedHead = Self.endOfList
        unlinkedHeadEntry = 0
        unlinkedTablePages = 0
        collector = Self.endOfList
        collected = 0
        return freed
    }

    /// Take over everything `other` owes (ranges and pages), leaving it empty.
    /// `memory` is the one the pages are threaded through.
    public mutating func absorb<M: PhysicalMemory>(_ other: inout PendingInvalidation, memory: M) {
        ranges.formUnion(emptying: &other.ranges)
        var next = other.unlinkedHead, entry = other.unlinkedHeadEntry
        while next != Self.endOfList {
            let frame = MFN(raw: next)
            let link = memory.load64(Self.linkAddress(frame, entry))
            // A collecting page's frames first: recording the page itself may
            // make it this list's collecting page, which overwrites them.
            let count = other.collectedFrames(next, link: link)
            var slot = 1
            while slot <= count {
                recordUnlinkedTable(Self.collectedFrame(frame, slot, memory: memory), memory: memory)
                slot &+= 1
            }
            recordUnlinkedTable(frame, entry: entry, emptied: link & Self.collectorTag != 0, memory: memory)
            (next, entry) = Self.successor(link)
        }
        other.unlinkedHead = Self.endOfList
        other.unlinkedHeadEntry = 0
        other.unlinkedTablePages = 0
        other.collector = Self.endOfList
        other.collected = 0
    }

    /// The frame a link word points at (or `endOfList`) and that frame's link entry.
    @inline(__always) static func successor(_ link: UInt64) -> (frame: UInt64, entry: Int) {
        let link = link & ~collectorTag
        return link == 0 ? (endOfList, 0) : (link >> PageSize.shift4K, Int((link >> 3) & 0x1FF))
    }
    @inline(__always) static func linkAddress(_ frame: MFN, _ entry: Int) -> PhysAddr {
        frame.address.adding(UInt64(entry) &* TableLevel.descriptorBytes)
    }
}

import AArch64

/// The TLB maintenance and deferred releases owed by a series of P2M edits.
///
/// Edits never issue TLBI themselves (DESIGN.md rule 1). They record here (the
/// ranges and pages in a `PendingInvalidation`, as the SMMU's stage-1 mirror does):
/// - the GFN ranges whose old translations may still sit in a TLB (merged; past
///   `rangeCapacity` distinct ranges the batch falls back to a whole-VMID flush);
/// - the table pages that were unlinked;
/// - through `holdReference`, page references that must stay held until the
///   invalidation has completed (seed 000, XSA-346), kept by the `Releaser`.
///
/// `P2M.commit(_:)` invalidates the CPU TLBs, forwards the same ranges to the
/// attached IOMMU, waits for both, and only then releases the references and frees
/// the table pages. A batch is `~Copyable` (one owner of those obligations) and
/// traps if it is dropped with anything still owed: an uncommitted batch is a
/// use-after-free waiting for a TLB.
///
/// One batch serves one P2M at a time (it remembers the VMID it was first used for).
public struct FlushBatch<Releaser: PageReferenceReleaser>: ~Copyable {
    /// GFN ranges to invalidate and unlinked table pages, until the commit.
    @usableFromInline var pending = PendingInvalidation()
    public internal(set) var heldReferences: UInt64 = 0
    /// Set once an edit removed or changed a valid translation: a caller that is
    /// about to free or reuse a page *outside* this batch must commit first
    /// (XSA-346 part 1: never defer a flush past a page's release).
    public internal(set) var removedMappings = false
    @usableFromInline mutating func noteRemovedMappings() { removedMappings = true }
    /// Set once an edit wrote valid descriptors (a map, a split): the commit
    /// publishes them with one barrier if it owes no TLBI (whose own leading
    /// DSB does it). Not part of `isEmpty`: nothing is released by it.
    public internal(set) var publishesNewEntries = false
    @inline(__always) mutating func notePublishesNewEntries() { publishesNewEntries = true }
    @inline(__always) mutating func newEntriesPublished() { publishesNewEntries = false }
    var vmid: UInt16? = nil
    /// Last, so the fields above sit at offsets that do not depend on `Releaser`.
    public var releaser: Releaser

    /// Transparent: a call built the batch in a frame of its own and copied the
    /// releaser there first.
    @_transparent public init(releaser: Releaser) { self.releaser = releaser }

    deinit {
        precondition(isEmpty, "FlushBatch dropped without commit: a TLB may still translate to freed pages")
    }

    /// GFN ranges to invalidate at commit.
    public var ranges: InvalidationRanges { pending.ranges }
    /// Pages covered by the recorded ranges (overlaps merged).
    public var pendingPages: UInt64 { pending.ranges.pages }
    /// Table pages unlinked by the batch's edits, freed at commit.
    public var unlinkedTablePages: Int { pending.unlinkedTablePages }
    /// Nothing to invalidate, free or release. Transparent: on the board the
    /// deinit's check is its one caller.
    @_transparent public var isEmpty: Bool { pending.isEmpty && heldReferences == 0 }
    /// Some translation must be invalidated before this batch is done.
    public var needsInvalidation: Bool { !pending.ranges.isEmpty }
    /// The recorded ranges overflowed: the commit invalidates the whole VMID.
    public var invalidatesWholeVMID: Bool { pending.ranges.coversEverything }

    /// Keep a page reference (or `count` consecutive ones) until the invalidation
    /// has completed; the releaser drops it at commit.
    public mutating func holdReference(_ mfn: MFN, count: UInt64 = 1) {
        releaser.hold(mfn, count: count)
        heldReferences &+= count
    }

    /// Whether a recorded range overlaps [gfn, gfn+count). Asked of the batch rather
    /// than of `ranges`, whose getter copies all of it (152 bytes) on every map;
    /// mutating, and transparent, so that the ranges are read in place.
    @_transparent
    mutating func owesInvalidation(overlapping gfn: UInt64, frames count: UInt64) -> Bool {
        pending.owesInvalidation(overlapping: gfn, frames: count)
    }

    /// Record that translations for [gfn, gfn+count) may be cached.
    @inline(__always)
    @usableFromInline mutating func recordInvalidation(_ gfn: UInt64, count: UInt64) {
        removedMappings = true
        pending.recordInvalidation(gfn, frames: count)
    }

    /// An unlinked table page waits for the commit (`emptied`: none of its
    /// entries is valid; see `PendingInvalidation.recordUnlinkedTable`).
    @inline(__always)
    @usableFromInline mutating func recordUnlinkedTable<M: PhysicalMemory>(
        _ frame: MFN, entry: Int = 0, emptied: Bool = false, memory: M
    ) {
        pending.recordUnlinkedTable(frame, entry: entry, emptied: emptied, memory: memory)
    }

    /// The commit's last step, once the CPU and every IOMMU have completed the
    /// invalidation of every recorded range: drop the held references, free the
    /// unlinked table pages to `pool`. Nothing else releases either. Transparent:
    /// `P2M.commit` is its one caller.
    @_transparent
    mutating func invalidationCompleted<M: PhysicalMemory, Pool: TablePageSource>(
        freeingTo pool: inout Pool, memory: M
    ) -> (tablePages: Int, references: UInt64) {
        let references = heldReferences
        if references != 0 {
            releaser.releaseHeld()
            heldReferences = 0
        }
        let tablePages = pending.releaseUnlinkedTables(to: &pool, memory: memory)
        removedMappings = false
        vmid = nil  // empty again: free to serve another P2M
        return (tablePages, references)
    }

    /// Take over everything `other` owes (ranges, unlinked table pages, held
    /// references), leaving it empty: for a caller that keeps one batch per P2M
    /// whose commit failed (`P2MFlushError`) and must not lose what it holds.
    /// `memory` is the P2M's (the unlinked list is threaded through the pages).
    public mutating func absorb<M: PhysicalMemory>(_ other: inout FlushBatch<Releaser>, memory: M) {
        if let vmid = other.vmid { bind(vmid: vmid) }
        pending.absorb(&other.pending, memory: memory)
        removedMappings = removedMappings || other.removedMappings
        other.removedMappings = false
        publishesNewEntries = publishesNewEntries || other.publishesNewEntries
        other.publishesNewEntries = false
        if other.heldReferences != 0 {
            releaser.takeHeld(from: &other.releaser)
            heldReferences &+= other.heldReferences
            other.heldReferences = 0
        }
        other.vmid = nil
    }

    mutating func bind(vmid: UInt16) {
        if let bound = self.vmid {
            precondition(bound == vmid, "one FlushBatch per P2M")
        } else {
            self.vmid = vmid
        }
    }
}

/// What a commit did: what the benchmark and tests count.
public struct FlushStatistics: Equatable, Sendable {
    /// Range or per-IPA invalidation calls made on the CPU TLB protocol.
    public var rangeInvalidations = 0
    /// Whole-VMID invalidations (VMALLS12E1IS).
    public var vmidInvalidations = 0
    /// `TLBMaintenance.publishNewEntries` barriers: 1 when the commit wrote new
    /// valid entries and owed no TLBI, else 0.
    public var publishBarriers = 0
    public var pagesInvalidated: UInt64 = 0
    public var tablePagesFreed = 0
    public var referencesReleased: UInt64 = 0
    public init() {}
    /// TLB invalidation operations issued on the CPU side.
    public var tlbiOperations: Int { rangeInvalidations + vmidInvalidations }
}

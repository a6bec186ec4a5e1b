import AArch64

/// What the table engine reports while it edits: the only channel through which an
/// edit has effects beyond the table memory. The engine never invalidates a TLB or
/// frees a page itself.
public protocol TableEditSink: ~Copyable {
    /// Old translations of [input, input+count) may be cached; they must be invalidated
    /// before anything they pointed to is reused (deferred to the flush).
    mutating func invalidateLater(_ input: UInt64, count: UInt64)
    /// Break-before-make (Arm ARM "Using break-before-make when updating translation table entries"): the entry covering [input, input+count) was
    /// just written invalid and will next be written with a different output or size.
    /// Invalidate now; return true only when the invalidation has completed. On
    /// false (an IOMMU did not confirm it) the engine does not make the new entry:
    /// the entry stays invalid and everything it mapped is reported through
    /// `leafRemoved`/`tableUnlinked` (a merge, which changes no translation, puts the
    /// identical table descriptor back instead). The sink keeps the range owed.
    mutating func invalidateNow(_ input: UInt64, count: UInt64) -> Bool
    /// The entry broken for [input, input+count) stays invalid: `invalidateNow`
    /// returned false, so it was not made again and the edit is incomplete there
    /// (what it mapped was reported removed).
    mutating func breakNotMade(_ input: UInt64, count: UInt64)
    /// A leaf for `count` pages from `input` (old raw `descriptor`, output `output`)
    /// left the table, or was overwritten with a different output.
    mutating func leafRemoved(_ input: UInt64, output: MFN, count: UInt64, descriptor: UInt64)
    /// A zeroed table page for the edit being committed. The prepare phase counted
    /// it against `availableTablePages`, so running out here is a programming error.
    mutating func allocateTablePage() -> MFN
    /// Pages the sink can still hand out (checked by the prepare phase).
    var availableTablePages: Int { get }
    /// A table page left the tree. It may be reused only after the invalidation.
    /// Its entry `clearedEntry` is invalid and was just written (or is 0 when the
    /// engine has no such entry at hand): where a pending list may keep a link.
    mutating func tableUnlinked(_ frame: MFN, clearedEntry: Int)
    /// Table page `table`, which this edit allocated and filled, is about to be
    /// linked into the tree (before the engine's store barrier and the link):
    /// where a walker that does not snoop the CPU's caches needs it cleaned.
    mutating func tableLinking(_ table: MFN)
    /// A leaf was rewritten in place (same output and size): `count` pages from `input`.
    mutating func leafRewritten(_ input: UInt64, count: UInt64, old: UInt64, new: UInt64)
    /// The valid-entry count of table page `table`, kept in its pool
    /// (`TablePageSource.validEntryCount`).
    mutating func validEntries(_ table: MFN) -> Int
    mutating func setValidEntries(_ table: MFN, _ count: Int)
}

extension TableEditSink where Self: ~Copyable {
    /// A sink whose walkers snoop the CPU's caches has nothing to do before a link.
    @inline(__always) public mutating func tableLinking(_ table: MFN) {}
}

/// Why the engine refused an edit. Nothing was written when one of these is thrown.
public enum TableEditError: Error, Equatable, Sendable {
    case zeroCount
    case inputBeyondLimit(UInt64, limit: UInt64)
    case outputBeyondLimit(MFN, limit: MFN)
    case rangeWraps(UInt64, count: UInt64)
    /// Insert-only map over a valid entry: the first valid input frame found.
    case alreadyMapped(UInt64)
    case tablePoolExhausted(needed: Int, available: Int)
}

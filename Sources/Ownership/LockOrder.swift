/// Module Ownership: who may touch each physical frame, and what that means
/// for the P2M, the IOMMU and the caches (DESIGN.md rules 1-5 and 7).
///
/// # Lock order
///
/// Three levels, always taken top to bottom and released bottom to top:
///
/// 1. **P2M lock** of a domain (Xen's `p2m_write_lock`). Held while an entry of
///    that domain's stage-2 table is created or removed, and while the xenheap
///    GFN of a frame mapped there is set (seed 001: the GFN must be written
///    under the P2M lock, after the entry exists). At most one P2M lock is held
///    at a time: no operation edits two domains' tables at once (a grant map
///    edits the mapper's table only; the granter's frame is pinned through its
///    frame entry, level 3).
/// 2. **Domain page lock** (Xen's `d->page_alloc_lock`, pKVM's
///    `host_lock_component`/`hyp_lock_component`). Held while frames move
///    between owners: donate, reclaim, share with the hypervisor or a guest,
///    host DMA sharing, xenheap sharing.
/// 3. **Frame atomics**: the two words of each `FrameEntry`, updated only with
///    compare-exchange. They are not locks, so nothing is taken below them;
///    a reader that holds no lock (the P2M's entry-removal listener clearing a
///    GFN, a reference dropped after a flush batch commits) still sees and
///    writes whole, consistent words.
///
/// `LockRank` gives the order a number and `LockSet` checks it on every
/// acquisition: taking a lock whose rank is not strictly greater than every
/// lock already held is a programming error (`precondition`), not a runtime
/// condition, because no input can cause it.
import AArch64
import Translation

/// The position of a lock in the module's lock order (lower is taken first).
public enum LockRank: UInt8, Sendable, CaseIterable {
    case p2m = 1
    case domainPages = 2
}

/// The locks an operation currently holds, as a bit per rank.
///
/// Exclusive access to the ownership state itself is Swift's `inout`
/// (one CPU at a time enters `PageOwnership`); `LockSet` records which lock
/// scopes the running operation is inside and checks every entry against the
/// order above, on the host exactly as on the board, so XCTest exercises the
/// ordering the board relies on.
public struct LockSet: Equatable, Sendable {
    public private(set) var held: UInt8 = 0

    public init() {}

    @inline(__always) public func holds(_ rank: LockRank) -> Bool { held & Self.bit(rank) != 0 }

    /// Whether `rank` may be taken now: nothing of the same or a later rank is held.
    @inline(__always) public func mayAcquire(_ rank: LockRank) -> Bool {
        held & ~(Self.bit(rank) &- 1) == 0
    }

    @inline(__always) public mutating func acquire(_ rank: LockRank) {
        precondition(mayAcquire(rank), "lock order violated (see LockOrder.swift)")
        held |= Self.bit(rank)
    }

    @inline(__always) public mutating func release(_ rank: LockRank) {
        precondition(holds(rank), "releasing a lock that is not held")
        // Release in reverse order: nothing later than `rank` may still be held.
        precondition(held & ~((Self.bit(rank) << 1) &- 1) == 0, "lock released out of order")
        held &= ~Self.bit(rank)
    }

    /// Inlined with a constant rank, every check above folds to one test of `held`.
    @inline(__always) static func bit(_ rank: LockRank) -> UInt8 { 1 &<< rank.rawValue }
}

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
///    host DMA sharing, xenheap sharing. One per `PageOwnership`, like pKVM's
///    host lock: a transition may span frames of any bank (a DMA share range,
///    a frame leaving one domain for another), so one lock for the whole
///    frame table never has to be taken twice in some order.
/// 3. **Frame atomics**: the two words of each `FrameEntry`, updated only with
///    compare-exchange, the transition's checks made on the word the exchange
///    replaces (retried when another CPU changed it first). They are not
///    locks, so nothing is taken below them; a writer that holds no page lock
///    (a reference dropped after a flush batch commits, under some domain's
///    P2M lock; the P2M's entry-removal listener clearing a GFN) still sees
///    and writes whole, consistent words, and a count can neither underflow
///    nor overflow between its check and its update.
///
/// Both locks exclude, and both hand out a `~Copyable` token that only their
/// release consumes: a P2M lock is the domain's `P2MLock` (its token,
/// `P2MLockHeld`, is what every P2M edit demands), the page lock is the spin
/// lock `PageStateLock` (its token, `PageStateLockHeld`, is what every internal
/// function that changes the state of several frames as one step demands:
/// the DMA share and unshare steps with their rollbacks, the non-coherent
/// replay, the first-share flush). Only the lock can make a token, so calling
/// such a function without the page lock does not compile; dropping a token
/// unreleased traps. Each operation keeps its own `LockSet`, a local value on
/// the stack of the CPU running it: the set records the scopes that operation
/// is inside and checks every entry against the order above, on the host
/// exactly as on the board, so XCTest exercises the ordering the board relies
/// on. The page lock is entered only through the set (`withPages`, or
/// `acquirePages`/`releasePages` for a straight-line scope; Embedded Swift's
/// `defer` cannot consume the token), so the order check cannot be skipped.
/// Taking a lock whose rank is not strictly greater than every lock already
/// held is a programming error (`precondition`), not a runtime condition,
/// because no input can cause it. The token is a zero-size value: holding one
/// costs nothing beyond the lock's own atomics.
import AArch64
import Translation
import Synchronization

/// The position of a lock in the module's lock order (lower is taken first).
public enum LockRank: UInt8, Sendable, CaseIterable {
    case p2m = 1
    case domainPages = 2
}

/// The domain page lock: a test-and-set spin lock in a word that outlives
/// every `LockSet` bound to it (allocated with its `PageOwnership`). Holders
/// never sleep and hold it for work bounded by the frame table; interrupts
/// stay masked at EL2, so a holder is never preempted while another CPU spins.
public struct PageStateLock: @unchecked Sendable {
    let word: UnsafeMutablePointer<Atomic<UInt32>>

    @_transparent static func allocate() -> PageStateLock {
        let word = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        word.initialize(to: Atomic(0))
        return PageStateLock(word: word)
    }

    func deallocate() {
        word.deinitialize(count: 1)
        word.deallocate()
    }

    public var isLocked: Bool { word.pointee.load(ordering: .relaxed) != 0 }

    /// Acquire ordering: the previous holder's frame-state writes are visible.
    @_transparent func lock() -> PageStateLockHeld {
        while !word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            while word.pointee.load(ordering: .relaxed) != 0 {}
        }
        return PageStateLockHeld()
    }

    /// Release ordering: our writes are visible to the next holder.
    func unlock(_ held: consuming PageStateLockHeld) {
        precondition(word.pointee.load(ordering: .relaxed) == 1, "releasing a page lock that is not held")
        word.pointee.store(0, ordering: .releasing)
        held.discharge()
    }
}

/// Proof that the caller holds the domain page lock. Functions that need it
/// held take it `borrowing` (`holding:`); only `LockSet.releasePages` ends it
/// (`discard self`, hence `@frozen`).
@frozen public struct PageStateLockHeld: ~Copyable {
    init() {}
    consuming func discharge() { discard self }
    deinit { Self.droppedWithoutRelease() }
    static func droppedWithoutRelease() { preconditionFailure("page lock token dropped without release") }
}

/// The locks one operation currently holds, as a bit per rank; bound to the
/// page lock it takes for `.domainPages`. The P2M rank only records: its
/// exclusion is the domain's `P2MLock.withLock`, entered right after.
public struct LockSet {
    public private(set) var held: UInt8 = 0
    /// Nil only for a set that records the order and excludes nobody (the
    /// order's own tests).
    let pages: PageStateLock?

    init() { pages = nil }

    init(pages: PageStateLock) { self.pages = pages }

    @inline(__always) public func holds(_ rank: LockRank) -> Bool { held & Self.bit(rank) != 0 }

    /// Whether `rank` may be taken now: nothing of the same or a later rank is held.
    @inline(__always) public func mayAcquire(_ rank: LockRank) -> Bool {
        held & ~(Self.bit(rank) &- 1) == 0
    }

    /// Records the P2M rank (its exclusion is the domain's `P2MLock.withLock`).
    /// The page lock is not taken here: it needs its token (`withPages`).
    @inline(__always) public mutating func acquire(_ rank: LockRank) {
        precondition(rank == .p2m, "the page lock is taken with withPages/acquirePages")
        enter(rank)
    }

    @inline(__always) public mutating func release(_ rank: LockRank) {
        precondition(rank == .p2m, "the page lock is released with its token")
        leave(rank)
    }

    /// Takes the domain page lock (after any P2M lock, never before).
    @inline(__always) public mutating func acquirePages() -> PageStateLockHeld {
        enter(.domainPages)
        guard let pages else { return PageStateLockHeld() }
        return pages.lock()
    }

    @inline(__always) public mutating func releasePages(_ held: consuming PageStateLockHeld) {
        leave(.domainPages)
        if let pages { pages.unlock(held) } else { held.discharge() }
    }

    /// Runs `body` with the domain page lock held, released however it exits.
    /// `body` gets this set back (`inout`) for what it takes or checks inside.
    @inline(__always) public mutating func withPages<Result, Failure: Error>(
        _ body: (borrowing PageStateLockHeld, inout LockSet) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let held = acquirePages()
        do {
            let result = try body(held, &self)
            releasePages(held)
            return result
        } catch {
            releasePages(held)
            throw error
        }
    }

    @_transparent mutating func enter(_ rank: LockRank) {
        precondition(mayAcquire(rank), "lock order violated (see LockOrder.swift)")
        held |= Self.bit(rank)
    }

    @_transparent mutating func leave(_ rank: LockRank) {
        precondition(holds(rank), "releasing a lock that is not held")
        // Release in reverse order: nothing later than `rank` may still be held.
        precondition(held & ~((Self.bit(rank) << 1) &- 1) == 0, "lock released out of order")
        held &= ~Self.bit(rank)
    }

    /// Inlined with a constant rank, every check above folds to one test of `held`.
    @inline(__always) static func bit(_ rank: LockRank) -> UInt8 { 1 &<< rank.rawValue }
}

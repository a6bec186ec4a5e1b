import Synchronization

/// The write lock of one domain's P2M (Xen's `p2m->lock`), with a `~Copyable`
/// witness: `acquire` returns a `P2MLockHeld`, which only `release` can consume, so a
/// token cannot be duplicated and dropping it without releasing traps.
///
/// Discipline (see `P2M`): take the lock, then the P2M `inout`; edit; `commit` the
/// batch; release. Every P2M edit takes the token `borrowing` (`holding:`), so an
/// edit outside the lock does not compile; nothing else touches the P2M's tables
/// or its pool meanwhile. (Embedded Swift: `defer` cannot consume the token, so a
/// scope with several exits uses `withLock`.)
/// A spin lock because holders never sleep and hold it for bounded work (edits are
/// bounded by their counts, teardown by its budget); there are no lock-free readers.
public struct P2MLock: ~Copyable, Sendable {
    let state = Atomic<UInt32>(0)

    public init() {}

    public var isLocked: Bool { state.load(ordering: .relaxed) != 0 }

    /// Spin until the lock is ours. Acquire ordering: the previous holder's table
    /// writes are visible to us.
    public borrowing func acquire() -> P2MLockHeld {
        while !state.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            while state.load(ordering: .relaxed) != 0 {}
        }
        return P2MLockHeld()
    }

    /// Release ordering: our table writes are visible to the next holder.
    public borrowing func release(_ held: consuming P2MLockHeld) {
        precondition(state.load(ordering: .relaxed) == 1, "releasing a P2M lock that is not held")
        state.store(0, ordering: .releasing)
        held.discharge()
    }

    /// Run `body` with the lock held.
    public borrowing func withLock<Result, Failure: Error>(
        _ body: (borrowing P2MLockHeld) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let held = acquire()
        do {
            let result = try body(held)
            release(held)
            return result
        } catch {
            release(held)
            throw error
        }
    }
}

/// Proof that the caller holds a `P2MLock`. Functions that need the lock held take it
/// `borrowing`; only `P2MLock.release` ends it (`discard self`, hence `@frozen`).
@frozen public struct P2MLockHeld: ~Copyable {
    init() {}
    consuming func discharge() { discard self }
    deinit { Self.droppedWithoutRelease() }
    static func droppedWithoutRelease() { preconditionFailure("P2M lock token dropped without release") }
}

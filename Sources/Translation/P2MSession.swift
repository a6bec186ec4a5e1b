import AArch64

/// One P2M operation in progress: the engine's sink, reaching the P2M (pool, TLB,
/// hooks) and the caller's batch in place. It coalesces the engine's per-leaf
/// reports into runs (consecutive GFNs and MFNs of one type) before they reach the
/// listener and the observer.
///
/// It holds the two by address, not by value: moving a P2M and a batch into a
/// session and back costs two copies of each (about 1 KiB for a P2M with hooks),
/// which was most of the time of a one-page map or unmap. The addresses come only
/// from `P2M.runSession` and the P2M's other `run…` commit phases (`runPlannedMap`
/// and its siblings), each called with `&self` and `&batch` by a caller that holds
/// exclusive (`inout`) access to both for the session's whole life; the session
/// is `~Copyable` and never escapes that call.
///
/// A guest session (`P2MGuestSession`, only where `Environment.SessionGuest` is
/// not `NoSessionGuest`) holds instead the address of a guest sink and no batch,
/// and forwards every report there: a second editor then commits through this
/// same type, so the engine's commit half is instantiated once for both. Where
/// there is no guest, `Environment.SessionGuest.isPresent` is a constant false
/// and the guest branches fold away.
@usableFromInline
struct P2MSession<Environment: P2MEnvironment, R: PageReferenceReleaser>: ~Copyable, TableEditSink {
    /// The `P2M<Environment>`, or in a guest session the `Environment.SessionGuest`.
    @usableFromInline let ownerAddress: UnsafeMutableRawPointer
    /// The `FlushBatch<R>`; nil only in a guest session.
    @usableFromInline let batchAddress: UnsafeMutableRawPointer?
    @inlinable @inline(__always) var p2m: P2M<Environment> {
        _read { yield ownerAddress.assumingMemoryBound(to: P2M<Environment>.self).pointee }
        nonmutating _modify { yield &ownerAddress.assumingMemoryBound(to: P2M<Environment>.self).pointee }
    }
    @inlinable @inline(__always) var batch: FlushBatch<R> {
        _read { yield batchAddress.unsafelyUnwrapped.assumingMemoryBound(to: FlushBatch<R>.self).pointee }
        nonmutating _modify {
            yield &batchAddress.unsafelyUnwrapped.assumingMemoryBound(to: FlushBatch<R>.self).pointee
        }
    }
    /// The guest sink when this is a guest session.
    @inlinable @inline(__always) var guest: UnsafeMutablePointer<Environment.SessionGuest>? {
        guard Environment.SessionGuest.isPresent, batchAddress == nil else { return nil }
        return ownerAddress.assumingMemoryBound(to: Environment.SessionGuest.self)
    }

    // The pending removal run.
    @usableFromInline var removedGFN: UInt64 = 0
    @usableFromInline var removedMFN: UInt64 = 0
    @usableFromInline var removedCount: UInt64 = 0
    /// The run's descriptor type bits, compared raw so the per-page path decodes nothing.
    @usableFromInline var removedTypeBits: UInt64 = 0
    // The pending type-change run, for the observer.
    @usableFromInline var typeChange: (from: P2MType, to: P2MType, access: P2MAccess)? = nil
    @usableFromInline var changedGFN: UInt64 = 0
    @usableFromInline var changedMFN: UInt64 = 0
    @usableFromInline var changedCount: UInt64 = 0
    // A break-before-make invalidation the IOMMU did not confirm, and the entries
    // it left invalid (`breakNotMade`): the operation then throws.
    @usableFromInline var lastSyncError: IOMMUSyncError? = nil
    @usableFromInline var unconfirmed: UnconfirmedBreak? = nil

    @usableFromInline init(p2m: UnsafeMutablePointer<P2M<Environment>>,
         batch: UnsafeMutablePointer<FlushBatch<R>>) {
        ownerAddress = UnsafeMutableRawPointer(p2m)
        batchAddress = UnsafeMutableRawPointer(batch)
    }

    /// A guest session: every report goes to `guest`.
    @usableFromInline init(guest: UnsafeMutablePointer<Environment.SessionGuest>) {
        ownerAddress = UnsafeMutableRawPointer(guest)
        batchAddress = nil
    }

    // Transparent, as `finish`: each has one caller, and the board does not
    // inline `@inline(__always)`.
    @_transparent @usableFromInline static func type(of d: UInt64) -> P2MType {
        guard let type = P2MType(softwareBits: Stage2Descriptor(raw: d).softwareBits) else {
            preconditionFailure("P2M leaf without a p2m type")
        }
        return type
    }

    @inlinable @inline(__always) mutating func invalidateLater(_ input: UInt64, count: UInt64) {
        if let guest { return guest.pointee.invalidateLater(input, count: count) }
        batch.recordInvalidation(input, count: count)
    }

    @inlinable @inline(__always) mutating func invalidateNow(_ input: UInt64, count: UInt64) -> Bool {
        if let guest { return guest.pointee.invalidateNow(input, count: count) }
        batch.noteRemovedMappings()
        guard let error = p2m.invalidateNow(input, count: count) else { return true }
        // The IOMMU did not confirm: keep the range owed, so the commit retries
        // it and holds every release until the IOMMU has completed it.
        batch.recordInvalidation(input, count: count)
        lastSyncError = error
        return false
    }

    @inlinable mutating func breakNotMade(_ input: UInt64, count: UInt64) {
        if let guest { return guest.pointee.breakNotMade(input, count: count) }
        let error = lastSyncError ?? .completionTimeout
        if let u = unconfirmed {
            // A run inside the operation's validated range: it cannot wrap.
            unconfirmed = UnconfirmedBreak(error: u.error, first: min(u.first, input), end: max(u.end, input &+ count))
        } else {
            unconfirmed = UnconfirmedBreak(error: error, first: input, end: input &+ count)
        }
    }

    @inlinable @inline(__always)
    mutating func leafRemoved(_ input: UInt64, output: MFN, count: UInt64, descriptor: UInt64) {
        if let guest { return guest.pointee.leafRemoved(input, output: output, count: count, descriptor: descriptor) }
        let typeBits = descriptor & Stage2Descriptor.softwareBitsMask
        if input == removedGFN &+ removedCount && output.raw == removedMFN &+ removedCount
            && typeBits == removedTypeBits && removedCount != 0 {
            removedCount &+= count
            return
        }
        flushRemoved()
        removedGFN = input
        removedMFN = output.raw
        removedCount = count
        removedTypeBits = typeBits
    }

    @inlinable @inline(__always) mutating func flushRemoved() {
        guard removedCount != 0 else { return }
        let type = Self.type(of: removedTypeBits)
        p2m.sessionListener.entryRemoved(GFN(raw: removedGFN), mfn: MFN(raw: removedMFN), count: removedCount,
                                  type: type, batch: &batch)
        removedCount = 0
    }

    // Transparent: the engine's rewrite (`changeType`) is its one caller.
    @_transparent @usableFromInline mutating func leafRewritten(_ input: UInt64, count: UInt64, old: UInt64, new: UInt64) {
        if let guest { return guest.pointee.leafRewritten(input, count: count, old: old, new: new) }
        let mfn = Stage2Descriptor(raw: old).outputFrame.raw
        if changedCount != 0 && input == changedGFN &+ changedCount && mfn == changedMFN &+ changedCount {
            changedCount &+= count
            return
        }
        flushChanged()
        changedGFN = input
        changedMFN = mfn
        changedCount = count
    }

    @inlinable @inline(__always) mutating func flushChanged() {
        guard changedCount != 0, let change = typeChange else { return }
        p2m.sessionObserver.apply(.typeChanged(GFN(raw: changedGFN), MFN(raw: changedMFN), count: changedCount,
                                        from: change.from, to: change.to, access: change.access))
        changedCount = 0
    }

    @inlinable @inline(__always) mutating func allocateTablePage() -> MFN {
        if let guest { return guest.pointee.allocateTablePage() }
        guard let frame = p2m.sessionPool.allocateTablePage() else {
            preconditionFailure("table pool shrank between prepare and commit")
        }
        p2m.sessionTablePagesInUse &+= 1  // at most the pool's pages
        return frame
    }

    @inlinable var availableTablePages: Int {
        if let guest { return guest.pointee.availableTablePages }
        return p2m.sessionPool.availableTablePages
    }
    @inlinable @inline(__always) mutating func validEntries(_ table: MFN) -> Int {
        if let guest { return guest.pointee.validEntries(table) }
        return p2m.sessionPool.validEntryCount(table)
    }
    @inlinable @inline(__always) mutating func setValidEntries(_ table: MFN, _ count: Int) {
        if let guest { return guest.pointee.setValidEntries(table, count) }
        p2m.sessionPool.setValidEntryCount(table, count)
    }

    /// The P2M's walkers (the CPU's, an SMMU sharing stage 2) need nothing before
    /// a link; a guest may (a mirror a non-snooping SMMU walks).
    @inlinable @inline(__always) mutating func tableLinking(_ table: MFN) {
        if let guest { guest.pointee.tableLinking(table) }
    }

    @inlinable @inline(__always) mutating func tableUnlinked(_ frame: MFN, clearedEntry: Int) {
        if let guest { return guest.pointee.tableUnlinked(frame, clearedEntry: clearedEntry) }
        p2m.sessionTablePagesInUse &-= 1  // the page was counted in use
        // A table descriptor above some leaf table changed: the cached path may
        // lead through it (see `LeafPathCache`).
        p2m.sessionLeafCache.invalidate()
        // The pool's count says whether a valid entry is left in the page (a
        // table the engine emptied has none; one unlinked whole may have many).
        batch.recordUnlinkedTable(frame, entry: clearedEntry, emptied: p2m.sessionPool.validEntryCount(frame) == 0,
                                  memory: p2m.memory)
    }

    /// Deliver the last runs.
    @_transparent @usableFromInline mutating func finish() {
        flushRemoved()
        flushChanged()
    }
}

/// Entries an operation broke and left invalid because the IOMMU did not confirm
/// their invalidation: the first error, and the span [first, end) they cover.
@usableFromInline
struct UnconfirmedBreak {
    @usableFromInline let error: IOMMUSyncError
    @usableFromInline let first: UInt64
    @usableFromInline let end: UInt64
    @usableFromInline init(error: IOMMUSyncError, first: UInt64, end: UInt64) {
        self.error = error
        self.first = first
        self.end = end
    }
}

/// `Environment`'s P2M session type (with releaser `R`, the one the P2M's own
/// batches use) lent to the environment's `SessionGuest`: a guest's commits run
/// through the engine's functions the P2M's commits already instantiated for
/// that type, with every report forwarded to the guest (`P2MSession(guest:)`).
/// Each is the engine's general walk from the root (`commitMapFromRoot`), whose
/// functions the P2M's own commits reach too.
public enum P2MGuestSession<Environment: P2MEnvironment, R: PageReferenceReleaser> {
    /// `guest` is valid for the call (pass `&sink`), as the session that holds it.
    public static func commitMapFromRoot(
        _ engine: TableEngine, _ plan: consuming MapPlan, memory: Environment.Memory,
        guest: UnsafeMutablePointer<Environment.SessionGuest>
    ) {
        var session = P2MSession<Environment, R>(guest: guest)
        engine.commitMapFromRoot(plan, memory: memory, sink: &session)
    }

    public static func commitUnmapFromRoot(
        _ engine: TableEngine, _ plan: consuming RangePlan, memory: Environment.Memory,
        guest: UnsafeMutablePointer<Environment.SessionGuest>
    ) {
        var session = P2MSession<Environment, R>(guest: guest)
        engine.commitUnmapFromRoot(plan, memory: memory, sink: &session)
    }
}

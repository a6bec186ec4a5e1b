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
@usableFromInline
struct P2MSession<Environment: P2MEnvironment, R: PageReferenceReleaser>: ~Copyable, TableEditSink {
    @usableFromInline let p2mAddress: UnsafeMutablePointer<P2M<Environment>>
    @usableFromInline let batchAddress: UnsafeMutablePointer<FlushBatch<R>>
    @inlinable @inline(__always) var p2m: P2M<Environment> {
        _read { yield p2mAddress.pointee }
        nonmutating _modify { yield &p2mAddress.pointee }
    }
    @inlinable @inline(__always) var batch: FlushBatch<R> {
        _read { yield batchAddress.pointee }
        nonmutating _modify { yield &batchAddress.pointee }
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
        p2mAddress = p2m
        batchAddress = batch
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
        batch.recordInvalidation(input, count: count)
    }

    @inlinable @inline(__always) mutating func invalidateNow(_ input: UInt64, count: UInt64) -> Bool {
        batch.noteRemovedMappings()
        guard let error = p2m.invalidateNow(input, count: count) else { return true }
        // The IOMMU did not confirm: keep the range owed, so the commit retries
        // it and holds every release until the IOMMU has completed it.
        batch.recordInvalidation(input, count: count)
        lastSyncError = error
        return false
    }

    @inlinable mutating func breakNotMade(_ input: UInt64, count: UInt64) {
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
        guard let frame = p2m.sessionPool.allocateTablePage() else {
            preconditionFailure("table pool shrank between prepare and commit")
        }
        p2m.sessionTablePagesInUse &+= 1  // at most the pool's pages
        return frame
    }

    @inlinable var availableTablePages: Int { p2m.sessionPool.availableTablePages }
    @inlinable @inline(__always) func validEntries(_ table: MFN) -> Int { p2m.sessionPool.validEntryCount(table) }
    @inlinable @inline(__always) mutating func setValidEntries(_ table: MFN, _ count: Int) {
        p2m.sessionPool.setValidEntryCount(table, count)
    }

    @inlinable @inline(__always) mutating func tableUnlinked(_ frame: MFN, clearedEntry: Int) {
        p2m.sessionTablePagesInUse &-= 1  // the page was counted in use
        // A table descriptor above some leaf table changed: the cached path may
        // lead through it (see `LeafPathCache`).
        p2m.sessionLeafCache.invalidate()
        batch.recordUnlinkedTable(frame, entry: clearedEntry, memory: p2m.memory)
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

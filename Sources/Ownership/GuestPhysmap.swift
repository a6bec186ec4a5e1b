import AArch64
import Translation

/// The flush batch every ownership operation records into: its releaser
/// keeps page references until the invalidation completed (seed 000).
public typealias OwnershipFlushBatch = FlushBatch<FrameReferenceReleaser>

/// What the ownership layer needs from a domain's P2M, one 4 KiB page at a
/// time (each page has its own frame-state transition): Xen's `p2m_lookup`,
/// `p2m_set_entry` and `p2m_remove_mapping` under the P2M lock, every removed
/// leaf reported to the P2M's `FrameEntryListener` (`p2m_put_l3_page`) and
/// every invalidation recorded in the batch. Every edit demands the token of the
/// domain's held P2M lock (`GuestDomain.lock`), as `Translation.P2M`'s do.
///
/// `Translation.P2M` conforms below; this is the whole coupling between the
/// two modules, in P2M errors mapped to ownership errors.
public protocol GuestPhysmap: ~Copyable {
    /// The P2M entry at `gfn`, if any.
    func translate(_ gfn: GFN) -> (mfn: MFN, type: P2MType)?
    /// Maps one page where nothing is mapped.
    mutating func map(_ gfn: GFN, to mfn: MFN, as type: P2MType,
                      flushing batch: inout OwnershipFlushBatch,
                      holding lock: borrowing P2MLockHeld) throws(OwnershipError)
    /// Maps one page over whatever is mapped (break-before-make: the old
    /// translation is invalidated and waited for inside the call). If the
    /// IOMMU does not confirm that wait, this throws `EBUSY(.iommuNotConfirmed)`
    /// and, unlike every other refusal, has changed state: the old entry is
    /// gone (reported to the listener, its invalidation owed in the batch) and
    /// the new one was not made. The other edits here work on single 4 KiB
    /// leaves, which need no break-before-make inside the call (a map that
    /// fills a table keeps it if the merge's wait is not confirmed).
    mutating func replace(_ gfn: GFN, with mfn: MFN, as type: P2MType,
                          flushing batch: inout OwnershipFlushBatch,
                      holding lock: borrowing P2MLockHeld) throws(OwnershipError)
    /// Removes the entry at `gfn`.
    mutating func unmap(_ gfn: GFN, flushing batch: inout OwnershipFlushBatch,
                      holding lock: borrowing P2MLockHeld) throws(OwnershipError)
    /// Changes the type of the entry at `gfn` (RW ↔ RO of one kind).
    mutating func retype(_ gfn: GFN, from: P2MType, to: P2MType,
                         flushing batch: inout OwnershipFlushBatch,
                      holding lock: borrowing P2MLockHeld) throws(OwnershipError)
    /// CPU and IOMMU invalidation of the batch's ranges, completion, then its
    /// held references drop and its table pages are freed. If the IOMMU does
    /// not confirm completion it throws and the batch keeps all of it.
    mutating func commit(_ batch: inout OwnershipFlushBatch, holding lock: borrowing P2MLockHeld) throws(P2MFlushError)
    /// Moves everything `other` owes into `batch` (`FlushBatch.absorb` over
    /// this P2M's memory), leaving `other` empty.
    func merge(_ other: inout OwnershipFlushBatch, into batch: inout OwnershipFlushBatch)
    /// The frame table this P2M reports removals to (nil: none).
    var reportsTo: FrameTable? { get }
}

extension P2M: GuestPhysmap where Environment.Listener == FrameEntryListener {
    /// Inline, as `P2M.lookup`: a call would take the whole P2M, which a caller
    /// reaching it through the domain table copies first.
    @inline(__always)
    public func translate(_ gfn: GFN) -> (mfn: MFN, type: P2MType)? {
        guard let m = lookup(gfn) else { return nil }
        return (m.mfn, m.type)
    }

    public mutating func map(_ gfn: GFN, to mfn: MFN, as type: P2MType,
                             flushing batch: inout OwnershipFlushBatch,
                      holding lock: borrowing P2MLockHeld) throws(OwnershipError) {
        do {
            try map(gfn, to: mfn, count: 1, as: type, flushing: &batch, holding: lock)
        } catch {
            throw OwnershipError(error, at: gfn)
        }
    }

    public mutating func replace(_ gfn: GFN, with mfn: MFN, as type: P2MType,
                                 flushing batch: inout OwnershipFlushBatch,
                      holding lock: borrowing P2MLockHeld) throws(OwnershipError) {
        do {
            try map(gfn, to: mfn, count: 1, as: type, policy: .replace, flushing: &batch, holding: lock)
        } catch {
            throw OwnershipError(error, at: gfn)
        }
    }

    public mutating func unmap(_ gfn: GFN, flushing batch: inout OwnershipFlushBatch,
                      holding lock: borrowing P2MLockHeld) throws(OwnershipError) {
        do {
            try unmap(gfn, count: 1, flushing: &batch, holding: lock)
        } catch {
            throw OwnershipError(error, at: gfn)
        }
    }

    public mutating func retype(_ gfn: GFN, from: P2MType, to: P2MType,
                                flushing batch: inout OwnershipFlushBatch,
                      holding lock: borrowing P2MLockHeld) throws(OwnershipError) {
        do {
            try changeType(gfn, count: 1, from: from, to: to, flushing: &batch, holding: lock)
        } catch {
            throw OwnershipError(error, at: gfn)
        }
    }

    public mutating func commit(_ batch: inout OwnershipFlushBatch,
                                holding lock: borrowing P2MLockHeld) throws(P2MFlushError) {
        let _: FlushStatistics = try commit(&batch, holding: lock)
    }

    public func merge(_ other: inout OwnershipFlushBatch, into batch: inout OwnershipFlushBatch) {
        batch.absorb(&other, memory: memory)
    }

    public var reportsTo: FrameTable? { listener.frames }
}

extension OwnershipError {
    /// A P2M refusal in ownership terms.
    public init(_ error: P2MError, at gfn: GFN) {
        switch error {
        case .tablePoolExhausted: self = .ENOMEM(.tablePages(gfn))
        case .alreadyMapped(let g): self = .EBUSY(.p2mEntryExists(g))
        case .gfnBeyondIPASpace(let g, _): self = .EINVAL(.gfnOutOfRange(g))
        case .breakNotConfirmed: self = .EBUSY(.iommuNotConfirmed(gfn))
        default: self = .EINVAL(.p2mRejected(gfn))
        }
    }
}

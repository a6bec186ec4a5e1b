import AArch64

/// Why a P2M operation was refused. Every case but `breakNotConfirmed` leaves the
/// P2M, the pool, the batch and the hooks exactly as they were.
public enum P2MError: Error, Equatable, Sendable {
    case zeroCount
    /// gfn + count overflows.
    case rangeWraps(GFN, count: UInt64)
    /// A GFN of the range is at or beyond the configured IPA size.
    case gfnBeyondIPASpace(GFN, limit: GFN)
    /// An MFN of the range is at or beyond the PA range.
    case mfnBeyondPARange(MFN, limit: MFN)
    /// `map(_:to:order:...)` with a GFN or MFN not aligned to the order.
    case misaligned(GFN, MFN, order: PageOrder)
    /// Insert-only map over an existing entry: the first mapped GFN found.
    case alreadyMapped(GFN)
    case tablePoolExhausted(needed: Int, available: Int)
    /// Mapping with type `.invalid` (that is what `unmap` is for).
    case cannotMapInvalidType
    case unsupportedTypeTransition(from: P2MType, to: P2MType)
    /// The change observer (an IOMMU mirror) could not reserve what the change needs.
    case observerRefused(GFN, count: UInt64)
    /// A pending invalidation had to complete before this edit (the batch had broken
    /// an entry the edit would make again), and the IOMMU could not confirm it.
    /// Nothing was written; the batch still owes the invalidation.
    case iommuNotSynchronized(IOMMUSyncError)
    /// The operation did not complete: an entry it had to break (a block split, a
    /// valid entry replaced by one with another output or size) could not be made
    /// again because the IOMMU did not confirm the break's invalidation, and making
    /// it then could leave the IOMMU translating through the old entry. Unlike every
    /// other case this one leaves changes, because a broken entry cannot be put
    /// back: the IOMMU may already have dropped it, or may still hold it:
    /// - the broken entries, spanning `count` pages from `gfn` (a whole block for a
    ///   split, which may reach beyond the operation's range), are invalid: access
    ///   there faults, nothing translates stale. Everything they mapped was
    ///   reported removed to the listener, whose references the batch holds;
    /// - the rest of the operation's range was edited as asked, except a leaf table
    ///   run that contained a broken entry, which was left as the break left it;
    /// - the observer was told the union of the range and the broken span is
    ///   unmapped (a mirror then maps less than the P2M, never more);
    /// - the batch owes the invalidations: the next `commit` retries them and
    ///   releases nothing before the IOMMU confirms.
    /// Retry the operation (after a successful commit) to finish it, and map again
    /// what the broken span held beyond the range.
    case breakNotConfirmed(IOMMUSyncError, GFN, count: UInt64)
    /// The P2M was relinquished; it takes no more edits.
    case relinquished
    case configuration(Stage2ConfigurationError)

    init(_ e: TableEditError) {
        switch e {
        case .zeroCount: self = .zeroCount
        case .inputBeyondLimit(let f, let limit): self = .gfnBeyondIPASpace(GFN(raw: f), limit: GFN(raw: limit))
        case .outputBeyondLimit(let m, let limit): self = .mfnBeyondPARange(m, limit: limit)
        case .rangeWraps(let f, let count): self = .rangeWraps(GFN(raw: f), count: count)
        case .alreadyMapped(let f): self = .alreadyMapped(GFN(raw: f))
        case .tablePoolExhausted(let needed, let available): self = .tablePoolExhausted(needed: needed, available: available)
        }
    }
}

/// Why `P2M.commit` could not finish a batch. The CPU invalidation completed, but
/// the IOMMU did not confirm its own, so the batch keeps everything it owes: its
/// ranges (re-issued by the next commit), `heldReferences` page references and
/// `tablePages` unlinked table pages (released by the first commit that succeeds).
public enum P2MFlushError: Error, Equatable, Sendable {
    case iommuNotSynchronized(IOMMUSyncError, heldReferences: UInt64, tablePages: Int)
}

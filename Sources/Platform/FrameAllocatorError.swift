import AArch64

/// Why the frame allocator refused; the allocator is unchanged after each.
public enum FrameAllocatorError: Error, Equatable, Sendable {
    /// No free run of `count` frames aligned to `alignment` frames exists.
    case exhausted(count: UInt64, alignment: UInt64)
    case zeroCount
    case alignmentNotPowerOfTwo(UInt64)
    /// The range to free wraps past the last frame number.
    case rangeWraps(first: MFN, count: UInt64)
    /// The frame is not inside any RAM bank the allocator was built from.
    case notManaged(MFN)
    /// The frame is in an excluded range (image, DTB, reservation): it was
    /// never ours to hand out, so it cannot be given back.
    case excluded(MFN)
    /// The frame is already free.
    case doubleFree(MFN)
    /// The fixed table of free ranges is full: the free space is too
    /// fragmented to record one more hole.
    case freeListFull(capacity: Int)
    case tooManyBanks(capacity: Int)
    case tooManyExclusions(capacity: Int)
}

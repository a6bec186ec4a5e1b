import AArch64
import Translation
import Platform
import SMMUv3

/// A P2M's (or an IOMMU mirror's) own pool of table pages: one contiguous,
/// aligned run of frames reserved from the frame allocator up front, so a
/// two-phase P2M update can count what it needs before it writes (the pool is
/// the P2M's alone: nobody takes a page between prepare and commit).
struct FramePool: TablePageSource {
    /// Concatenated stage-2 roots are at most 16 pages, aligned to their size.
    static let runAlignment: UInt64 = 16
    let first: MFN
    let count: Int
    private var free: [Bool]
    private(set) var availableTablePages: Int

    init(frames count: Int, from allocator: inout FrameAllocator) throws(FrameAllocatorError) {
        first = try allocator.allocate(count: UInt64(count), alignment: Self.runAlignment)
        self.count = count
        free = [Bool](repeating: true, count: count)
        availableTablePages = count
    }

    mutating func allocateTablePage() -> MFN? { allocateContiguousTablePages(1) }

    /// `n` free pages in a row, the first aligned to `n` (the architecture's
    /// rule for a concatenated root).
    mutating func allocateContiguousTablePages(_ n: Int) -> MFN? {
        guard n > 0, n <= availableTablePages else { return nil }
        var start = 0
        while start + n <= count {
            var ok = true
            for i in start..<start + n where !free[i] { ok = false; break }
            if ok {
                for i in start..<start + n {
                    free[i] = false
                    IdentityMemory().zeroFrame(first.adding(UInt64(i)))
                }
                availableTablePages -= n
                return first.adding(UInt64(start))
            }
            start += n
        }
        return nil
    }

    mutating func freeTablePage(_ frame: MFN) {
        let index = Int(frame.raw &- first.raw)
        precondition(index >= 0 && index < count && !free[index], "FramePool: not one of this pool's pages")
        free[index] = true
        availableTablePages += 1
    }
}

/// The SMMU driver takes its stream table and queues straight from the
/// frame allocator.
extension FrameAllocator: @retroactive ContiguousFrameAllocator {
    public mutating func allocateContiguous(count: Int, alignmentFrames: Int) -> MFN? {
        try? allocate(count: UInt64(count), alignment: UInt64(alignmentFrames))
    }
    public mutating func freeContiguous(_ first: MFN, count: Int) {
        try? free(first, count: UInt64(count))
    }
}

import AArch64
import Translation
import Platform
import SMMUv3

/// A P2M's (or an IOMMU mirror's) table pages come from its own `FramePool`,
/// zeroed through the EL2 identity map as `TablePageSource` promises.
extension FramePool: @retroactive TablePageSource {
    public var availableTablePages: Int { availableFrames }

    public mutating func allocateTablePage() -> MFN? { allocateContiguousTablePages(1) }

    public mutating func allocateContiguousTablePages(_ count: Int) -> MFN? {
        guard let run = try? allocate(run: count) else { return nil }
        for i in 0..<UInt64(count) { IdentityMemory().zeroFrame(run.adding(i)) }
        return run
    }

    /// Inlined into the table engine's sinks, which reach the pool through a
    /// pointer: out of line, each read copied the whole pool first.
    @_transparent public func validEntryCount(_ frame: MFN) -> Int { Int(counter(frame)) }
    public mutating func setValidEntryCount(_ frame: MFN, _ count: Int) {
        setCounter(frame, UInt16(truncatingIfNeeded: count))
    }

    /// The engine frees only pages it took from this pool: anything else is a bug.
    public mutating func freeTablePage(_ frame: MFN) {
        do throws(FramePoolError) { try free(frame) } catch {
            preconditionFailure("FramePool: not one of this pool's pages in use")
        }
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

/// Uninitialised memory for `count` values of `T` from the EL2 heap, through
/// the one untyped allocation: a typed `allocate(capacity:)` was a
/// specialisation of its own in the image for every type the board allocates.
@_transparent
func heapAllocate<T: ~Copyable>(_: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
    UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.stride * count, alignment: MemoryLayout<T>.alignment)
        .bindMemory(to: T.self, capacity: count)
}

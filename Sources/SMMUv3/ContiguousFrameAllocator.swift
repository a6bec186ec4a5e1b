import AArch64

/// Where the driver gets memory for its stream table, L2 stream tables, CDs
/// and queues: naturally aligned runs of zeroable 4 KiB frames.
///
/// Board: the hypervisor's frame allocator; host: a bump allocator over the
/// fake RAM.
public protocol ContiguousFrameAllocator {
    /// `count` contiguous frames whose first frame number is a multiple of
    /// `alignmentFrames`, or nil.
    mutating func allocateContiguous(count: Int, alignmentFrames: Int) -> MFN?
    /// Give back a run obtained from `allocateContiguous` (used to undo a
    /// bring-up or attach that failed part-way).
    mutating func freeContiguous(_ first: MFN, count: Int)
}

extension ContiguousFrameAllocator {
    /// `count` frames aligned to their count, zeroed through `memory`; nil
    /// when the allocator has none (nothing is taken). The driver's one
    /// allocate-and-zero loop (stream table, queues, L2 arrays, CD frames).
    @usableFromInline mutating func allocateZeroed<M: PhysicalMemory>(_ count: Int, memory: M) -> MFN? {
        guard let first = allocateContiguous(count: count, alignmentFrames: count) else { return nil }
        for i in 0..<count { memory.zeroFrame(first.adding(UInt64(i))) }
        return first
    }
}

import AArch64
import Translation

/// Table pages for a P2M or a mirror: a free list over `count` frames from
/// `first`, handed out lowest first and reused last-freed first; each page is
/// zeroed on allocation, as `TablePageSource` promises.
public struct FreeListPool<Memory: PhysicalMemory>: TablePageSource {
    public let memory: Memory
    public private(set) var free: [MFN]

    public init(memory: Memory, first: MFN, count: Int) {
        self.memory = memory
        free = (0..<UInt64(count)).reversed().map { first.adding($0) }
    }
    public mutating func allocateTablePage() -> MFN? {
        guard let frame = free.popLast() else { return nil }
        memory.zeroFrame(frame)
        return frame
    }
    public mutating func freeTablePage(_ frame: MFN) { free.append(frame) }
    public var availableTablePages: Int { free.count }
}

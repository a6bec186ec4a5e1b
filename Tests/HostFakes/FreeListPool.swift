import AArch64
import Translation

/// Table pages for a P2M or a mirror: a free list over `count` frames from
/// `first`, handed out lowest first and reused last-freed first; each page is
/// zeroed on allocation, as `TablePageSource` promises.
public struct FreeListPool<Memory: PhysicalMemory>: TablePageSource {
    public let memory: Memory
    public private(set) var free: [MFN]
    public let first: MFN
    var entryCounts: [UInt16]

    public init(memory: Memory, first: MFN, count: Int) {
        self.memory = memory
        self.first = first
        free = (0..<UInt64(count)).reversed().map { first.adding($0) }
        entryCounts = Array(repeating: 0, count: count)
    }
    public mutating func allocateTablePage() -> MFN? {
        guard let frame = free.popLast() else { return nil }
        memory.zeroFrame(frame)
        entryCounts[index(frame)] = 0
        return frame
    }
    public func validEntryCount(_ frame: MFN) -> Int { Int(entryCounts[index(frame)]) }
    public mutating func setValidEntryCount(_ frame: MFN, _ count: Int) { entryCounts[index(frame)] = UInt16(count) }
    func index(_ frame: MFN) -> Int { Int(frame.raw - first.raw) }
    /// Told of every page given back (a break-before-make checker: no page
    /// may be freed while a walker may still reach it).
    public var freeWatcher: ((MFN) -> Void)? = nil
    public mutating func freeTablePage(_ frame: MFN) {
        freeWatcher?(frame)
        free.append(frame)
    }
    public var availableTablePages: Int { free.count }
}

import AArch64
import Translation

/// Cache maintenance that only counts the bytes it was asked to maintain, so a
/// benchmark measures the caller rather than a recorder.
public struct CountingCache: CacheMaintenance {
    public private(set) var bytes: UInt64 = 0
    public init() {}
    public mutating func clean(_ address: PhysAddr, bytes: UInt64) { self.bytes &+= bytes }
    public mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) { self.bytes &+= bytes }
    public mutating func synchronize() {}
}

import AArch64
import Translation

/// Host RAM as sparse 4 KiB frames of 512 words, each created on its first
/// store; a frame never written reads as zero. A class, so every
/// `SparseMemory` over it (one per P2M, mirror or device model) sees the same
/// bytes, and a test can snapshot `frames` whole.
public final class SparseRAM {
    public var frames: [UInt64: [UInt64]] = [:]
    public init() {}
}

public struct SparseMemory: PhysicalMemory {
    public let ram: SparseRAM
    public init(ram: SparseRAM = SparseRAM()) { self.ram = ram }

    public func load64(_ address: PhysAddr) -> UInt64 {
        ram.frames[address.frame.raw]?[Self.word(address)] ?? 0
    }
    public func store64(_ address: PhysAddr, _ value: UInt64) {
        ram.frames[address.frame.raw, default: [UInt64](repeating: 0, count: Self.wordsPerFrame)][Self.word(address)] = value
    }
    public func zeroFrame(_ frame: MFN) { ram.frames[frame.raw] = nil }

    static let wordsPerFrame = Int(PageSize.bytes4K / 8)
    @inline(__always) static func word(_ address: PhysAddr) -> Int { Int(address.raw & (PageSize.bytes4K - 1)) >> 3 }
}

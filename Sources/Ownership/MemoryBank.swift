import AArch64
import Translation

/// One RAM range of the memory map, as a `/memory` node of the DTB states it.
public struct MemoryBank: Equatable, Sendable {
    public let base: PhysAddr
    public let bytes: UInt64

    public init(base: PhysAddr, bytes: UInt64) {
        self.base = base
        self.bytes = bytes
    }

    public var firstFrame: MFN { base.frame }
    public var frameCount: UInt64 { bytes >> PageSize.shift4K }
}

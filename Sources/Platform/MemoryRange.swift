import AArch64

/// A contiguous range of physical addresses, `[base, base + size)`.
///
/// Built only through `init?(base:size:)` (or the DTB decoder, which checks
/// the same thing), so `end` never wraps.
public struct MemoryRange: Equatable, Sendable {
    public let base: PhysAddr
    public let size: UInt64

    /// `nil` when `base + size` would wrap past 2^64.
    public init?(base: PhysAddr, size: UInt64) {
        guard base.raw <= UInt64.max - size else { return nil }
        self.base = base
        self.size = size
    }

    /// One past the last byte.
    @inline(__always) public var end: PhysAddr { PhysAddr(raw: base.raw + size) }

    @inline(__always) public func contains(_ address: PhysAddr) -> Bool {
        address.raw >= base.raw && address.raw - base.raw < size
    }

    @inline(__always) public func overlaps(_ other: MemoryRange) -> Bool {
        size != 0 && other.size != 0 && base.raw < other.end.raw && other.base.raw < end.raw
    }

    /// The whole frames inside this range (base rounded up, end rounded down):
    /// the frames that may be handed out from a RAM bank.
    public var framesInside: FrameRange {
        let last = end.raw >> PageSize.shift4K
        // Rounding the base up cannot wrap unless it lies in the last page of
        // the address space, which holds no whole frame below `end` anyway.
        guard base.raw <= UInt64.max - PageSize.offsetMask4K else { return FrameRange(first: MFN(raw: last), endRaw: last) }
        let first = (base.raw + PageSize.offsetMask4K) >> PageSize.shift4K
        return first < last ? FrameRange(first: MFN(raw: first), endRaw: last) : FrameRange(first: MFN(raw: last), endRaw: last)
    }

    /// Every frame that touches this range (base rounded down, end rounded up):
    /// the frames that must never be handed out when this range is reserved.
    public var framesTouching: FrameRange {
        let first = base.raw >> PageSize.shift4K
        let last = size == 0 ? first : ((end.raw - 1) >> PageSize.shift4K) + 1
        return FrameRange(first: MFN(raw: first), endRaw: last)
    }
}

/// A half-open range of machine frames, `[first, first + count)`.
public struct FrameRange: Equatable, Sendable {
    public let first: MFN
    public let count: UInt64

    public init(first: MFN, count: UInt64) {
        precondition(first.raw <= UInt64.max - count, "FrameRange wraps")
        self.first = first
        self.count = count
    }

    @inline(__always) init(first: MFN, endRaw: UInt64) {
        self.first = first
        self.count = endRaw - first.raw
    }

    /// One past the last frame.
    @inline(__always) public var end: MFN { MFN(raw: first.raw + count) }
    @inline(__always) public var isEmpty: Bool { count == 0 }

    @inline(__always) public func contains(_ frame: MFN) -> Bool {
        frame.raw >= first.raw && frame.raw < end.raw
    }

    @inline(__always) public func overlaps(_ other: FrameRange) -> Bool {
        count != 0 && other.count != 0 && first.raw < other.end.raw && other.first.raw < end.raw
    }
}

extension FixedList where Element == MemoryRange {
    /// Whether one range of the list holds all of `range` (from its base, which
    /// it contains, to its end): a RAM bank that a carve-out, an image or a
    /// device tree must lie in. An index loop, not `contains(where:)` with a
    /// closure specialised per call site.
    public func holds(_ range: MemoryRange) -> Bool {
        for bank in self where bank.contains(range.base) && range.end.raw <= bank.end.raw { return true }
        return false
    }
}

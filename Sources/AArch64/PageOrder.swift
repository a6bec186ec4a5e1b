/// A power-of-two number of 4 KiB pages: what one leaf entry of a given level maps.
///
/// Xen's `page_order`: order 0 is a 4 KiB page, 9 a 2 MiB level-2 block, 18 a
/// 1 GiB level-1 block (4 KiB granule, Arm ARM "Translation granule").
public struct PageOrder: Equatable, Comparable, Sendable {
    public var raw: UInt8
    @inline(__always) public init(raw: UInt8) { self.raw = raw }
    public static func < (a: PageOrder, b: PageOrder) -> Bool { a.raw < b.raw }

    public static let page4K = PageOrder(raw: 0)
    public static let block2M = PageOrder(raw: UInt8(PageSize.shift2M - PageSize.shift4K))
    public static let block1G = PageOrder(raw: UInt8(PageSize.shift1G - PageSize.shift4K))

    /// Pages covered: 1 << order.
    @inline(__always) public var pages: UInt64 { 1 &<< UInt64(raw) }
    /// Bytes covered.
    @inline(__always) public var bytes: UInt64 { pages &<< PageSize.shift4K }
    /// The order of a leaf at `level` (0...3) with the 4 KiB granule.
    /// Transparent: `@inline(__always)` left it out of line on the board.
    @_transparent public init(leafLevel level: Int) {
        self.raw = UInt8(TableLevel.bitsPerLevel * (TableLevel.leafLevel - level))
    }
    /// Whether `frame` (a GFN or MFN raw value) is aligned to this order.
    @inline(__always) public func isAligned(_ frame: UInt64) -> Bool { frame & (pages &- 1) == 0 }
}

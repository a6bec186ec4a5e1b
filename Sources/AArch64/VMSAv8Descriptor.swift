/// What the VMSAv8-64 stage-1 and stage-2 descriptor formats share, 4 KiB
/// granule, 48-bit output (Arm ARM "Translation table descriptor formats"):
/// bit 0 valid; bits [1:0] 0b11 a table at levels 0-2 or a page at level 3,
/// 0b01 a block; SH[1:0] at [9:8]; AF at 10; the output address in [47:12];
/// Contiguous at 52; four software bits at [58:55]. Only the remaining
/// attribute bits differ between the stages, and they are `LeafAttributes`.
///
/// A format conforms by holding its raw word; every shared bit position is
/// written once, here.
public protocol VMSAv8Descriptor {
    associatedtype LeafAttributes: VMSAv8LeafAttributes
    var raw: UInt64 { get }
    init(raw: UInt64)
}

/// A format's leaf attribute fields, packed at their descriptor positions.
public protocol VMSAv8LeafAttributes {
    var bits: UInt64 { get }
}

extension VMSAv8Descriptor {
    @inline(__always) public static var validBit: UInt64 { 1 << 0 }
    /// Bit 1: table (levels 0-2) or page (level 3) when set, block when clear.
    @inline(__always) public static var tableOrPageBit: UInt64 { 1 << 1 }
    /// Bits [1:0] together: what kind of descriptor this is.
    @inline(__always) static var kindMask: UInt64 { validBit | tableOrPageBit }
    static var shShift: UInt64 { 8 }
    static var shMask: UInt64 { 0b11 << shShift }
    @inline(__always) public static var accessFlag: UInt64 { 1 << 10 }
    /// Output address bits [47:12].
    @inline(__always) public static var outputAddressMask: UInt64 { 0x0000_FFFF_FFFF_F000 }
    public static var contiguousBit: UInt64 { 1 << 52 }
    static var softwareShift: UInt64 { 55 }
    static var softwareMask: UInt64 { 0b1111 << softwareShift }
    /// Everything a leaf carries besides its output address and kind bits.
    @inline(__always) public static var attributeMask: UInt64 { ~outputAddressMask & ~kindMask }
    /// What an in-place attribute change must keep: output address and kind.
    @inline(__always) public static var outputAndKindMask: UInt64 { outputAddressMask | kindMask }

    // The structural reads and rewrites exist twice: on raw words, for the table
    // engine's inner loops (generic code that is not specialized, as the host's
    // ownership layer calls it, then pays no protocol witness per entry), and as
    // members of a descriptor value, which delegate to them.

    @inline(__always) public static func isValid(raw: UInt64) -> Bool { raw & validBit != 0 }
    @inline(__always) public static func isTable(raw: UInt64, atLevel level: Int) -> Bool {
        level < TableLevel.leafLevel && raw & kindMask == kindMask
    }
    @inline(__always) public static func outputFrame(raw: UInt64) -> MFN {
        MFN(raw: (raw & outputAddressMask) >> PageSize.shift4K)
    }
    @inline(__always) public static func rawTable(_ frame: MFN) -> UInt64 {
        frame.address.raw & outputAddressMask | kindMask
    }
    @inline(__always) public static func splitEntry(raw: UInt64, childLevel: Int, index: UInt64) -> UInt64 {
        let output = (raw & outputAddressMask) &+ (index &* TableLevel.pagesPerEntry(childLevel)) << PageSize.shift4K
        return raw & attributeMask | leafKind(level: childLevel) | output
    }
    @inline(__always) public static func asLeaf(raw: UInt64, atLevel level: Int) -> UInt64 {
        raw & ~kindMask | leafKind(level: level)
    }

    @inline(__always) public var isValid: Bool { Self.isValid(raw: raw) }
    /// A table descriptor (only meaningful at levels 0-2).
    @inline(__always) public func isTable(atLevel level: Int) -> Bool { Self.isTable(raw: raw, atLevel: level) }
    /// A block (levels 1-2) or page (level 3) descriptor.
    @inline(__always) public func isLeaf(atLevel level: Int) -> Bool {
        raw & Self.kindMask == Self.leafKind(level: level)
    }
    /// Bits [1:0] = 0b11: a table at levels 0-2 or a page at level 3, for a
    /// reader that does not know the level.
    @inline(__always) public var isTableOrPage: Bool { raw & Self.kindMask == Self.kindMask }
    @inline(__always) public var outputFrame: MFN { Self.outputFrame(raw: raw) }
    public var shareability: Shareability {
        Shareability(rawValue: UInt8(truncatingIfNeeded: (raw & Self.shMask) >> Self.shShift))!
    }
    public var accessFlag: Bool { raw & Self.accessFlag != 0 }

    /// A table descriptor pointing at the next-level table in `frame`, written
    /// without hierarchical attributes (stage 2 has none; stage 1 leaves its
    /// APTable/XNTable zero), so every restriction lives in the leaves.
    @inline(__always) public static func table(_ frame: MFN) -> Self { Self(raw: rawTable(frame)) }
    /// A block (level 1 or 2) or page (level 3) descriptor with AF set.
    @inline(__always) public static func leaf(_ frame: MFN, level: Int, attributes: LeafAttributes) -> Self {
        Self(raw: leafTemplate(level: level, attributes: attributes) | frame.address.raw & outputAddressMask)
    }
    /// The leaf bits without an output address, so a run of pages costs one OR per page.
    @inline(__always) public static func leafTemplate(level: Int, attributes: LeafAttributes) -> UInt64 {
        leafKind(level: level) | accessFlag | attributes.bits
    }
    /// The same leaf attributes (AF included) over another output and kind.
    @inline(__always) public func replacingAttributes(_ attributes: LeafAttributes) -> Self {
        Self(raw: raw & (Self.outputAndKindMask | Self.accessFlag) | attributes.bits)
    }
    /// The leaf at `childLevel` that this block, one level up, maps at child
    /// `index`: same attributes, consecutive outputs (how a block is split; block
    /// and page encodings differ only in bit 1).
    @inline(__always) public func splitEntry(childLevel: Int, index: UInt64) -> Self {
        Self(raw: Self.splitEntry(raw: raw, childLevel: childLevel, index: index))
    }
    /// A leaf at `level` with this leaf's attributes and output (how a table is
    /// merged back into a block).
    @inline(__always) public func asLeaf(atLevel level: Int) -> Self { Self(raw: Self.asLeaf(raw: raw, atLevel: level)) }
    /// Bits [1:0] of a leaf: a page at level 3, a block above it.
    @inline(__always) static func leafKind(level: Int) -> UInt64 {
        level == TableLevel.leafLevel ? kindMask : validBit
    }
}

/// A descriptor of either stage seen only through the bits the stages share:
/// the table engine's one view of the words it walks and writes, so the image
/// holds one engine for both formats. Stage-specific attributes reach it
/// already packed (`VMSAv8AttributeBits`), from a typed table's format.
public struct VMSAv8Entry: VMSAv8Descriptor, Sendable {
    public typealias LeafAttributes = VMSAv8AttributeBits
    public let raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }
}

/// One format's leaf attribute fields, already at their descriptor positions.
public struct VMSAv8AttributeBits: VMSAv8LeafAttributes, Sendable {
    public let bits: UInt64
    @inline(__always) public init(_ attributes: some VMSAv8LeafAttributes) { bits = attributes.bits }
}
